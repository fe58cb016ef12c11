/**
 * A reason the system cannot start that a person can fix, with what to do in
 * its message. Entry points print the message alone, without a stack trace.
 */
export class StartupProblem extends Error {}

// The rules the machine keeps, as a table chosen at start. Production runs
// PRODUCTION_RULES; the chaos suite and the simulator switch one off (through
// the fault catalogue, src/faults.ts, which the machine never imports) to show
// that a check catches the bug. Each rule is one guarantee of the saga promise.
export interface MachineRules {
  /** A resumed saga checks its timeout_minutos deadline, and re-arms it. */
  deadlineOnResume: boolean;
  /** A cancel on a saga that has ended is refused. */
  refuseCancelAfterEnd: boolean;
  /** Steps whose call had an unknown outcome are undone too, not only those that completed. */
  undoUnknownOutcomes: boolean;
  /** The compensations run in the reverse order of the steps. */
  undoInReverse: boolean;
  /** A refusal (4xx) after an attempt of unknown outcome leaves the step in the undo plan. */
  keepUndoAfterUncertainRefusal: boolean;
}

export const PRODUCTION_RULES: Readonly<MachineRules> = Object.freeze({
  deadlineOnResume: true,
  refuseCancelAfterEnd: true,
  undoUnknownOutcomes: true,
  undoInReverse: true,
  keepUndoAfterUncertainRefusal: true,
});

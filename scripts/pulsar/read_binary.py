"""Reads a saga-events topic over Pulsar's binary protocol (pulsar://) with Apache's own
Python client (`pulsar-client` from PyPI, which bundles the C++ library), and checks each
saga's events against what the saga log holds: all of them, each once, in order.

    read_binary.py --service-url pulsar://127.0.0.1:6650 --topic persistent://public/default/saga-events \
                   --expected expected.json [--timeout 60] [--token JWT] [--tls-ca cert.pem]

expected.json maps each saga id to its secuencias as the saga log has them
({"<saga_id>": [1, 2, ...]}). The reader starts at the earliest message, reads until it
has as many events as expected (then a short while more, to see a late copy) or the
timeout, and prints one JSON line: what it read and what is wrong. Exit status 0 when
nothing is wrong, 1 otherwise, 2 on a usage or connection error.

`npm run test:pulsar` (scripts/test-pulsar.ts) installs the client in a virtual
environment and the tests of test/pulsar/ call this script.
"""

import argparse
import json
import sys
import time

import pulsar


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service-url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expected", required=True, help="JSON file: saga id -> list of secuencias")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every expected event")
    parser.add_argument("--linger", type=float, default=1.0, help="seconds to go on reading once all are in")
    parser.add_argument(
        "--consumers-rule",
        action="store_true",
        help="ignore a second copy of (saga_id, secuencia), as consumers do, before comparing (copies are still counted)",
    )
    parser.add_argument("--token", help="a token for a broker with token authentication")
    parser.add_argument("--tls-ca", help="for pulsar+ssl://: the certificates to trust (PEM)")
    args = parser.parse_args()

    with open(args.expected, encoding="utf-8") as f:
        expected = {saga: list(secuencias) for saga, secuencias in json.load(f).items()}
    total = sum(len(s) for s in expected.values())

    secured = {}
    if args.token:
        secured["authentication"] = pulsar.AuthenticationToken(args.token)
    if args.tls_ca:
        secured["tls_trust_certs_file_path"] = args.tls_ca
        secured["tls_validate_hostname"] = True
    client = pulsar.Client(
        args.service_url, operation_timeout_seconds=30, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn), **secured
    )
    received = {}  # saga id -> secuencias in topic order, copies included
    wrong_keys = 0
    unparsable = 0
    read = 0
    try:
        reader = client.create_reader(args.topic, pulsar.MessageId.earliest)
        deadline = time.monotonic() + args.timeout
        done_at = None
        while True:
            now = time.monotonic()
            if done_at is not None and now >= done_at:
                break
            if now >= deadline:
                break
            wait_ms = int(max(1, min((done_at or deadline) - now, 0.5)) * 1000)
            try:
                msg = reader.read_next(wait_ms)
            except pulsar.Timeout:
                continue
            read += 1
            try:
                event = json.loads(msg.data())
                saga, secuencia = event["saga_id"], int(event["secuencia"])
            except (ValueError, KeyError, TypeError):
                unparsable += 1
                continue
            if msg.partition_key() != saga:
                wrong_keys += 1
            received.setdefault(saga, []).append(secuencia)
            if done_at is None and read - unparsable >= total:  # then linger: a late copy shows
                done_at = time.monotonic() + args.linger
        reader.close()
    finally:
        client.close()

    duplicates = sum(len(s) - len(set(s)) for s in received.values())
    if args.consumers_rule:
        received = {saga: list(dict.fromkeys(s)) for saga, s in received.items()}
    # Each saga: exactly its secuencias, in order, none twice.
    wrong = sorted(saga for saga, secuencias in expected.items() if received.get(saga, []) != secuencias)
    unexpected = sorted(saga for saga in received if saga not in expected)
    out_of_order = sorted(saga for saga, s in received.items() if any(b < a for a, b in zip(s, s[1:])))
    report = {
        "read": read,
        "expected": total,
        "sagas": len(received),
        "duplicates": duplicates,
        "wrong_keys": wrong_keys,
        "unparsable": unparsable,
        "out_of_order": out_of_order[:10],
        "wrong_sagas": len(wrong),
        "wrong_examples": [{"saga_id": s, "expected": expected[s], "received": received.get(s, [])} for s in wrong[:5]],
        "unexpected_sagas": unexpected[:10],
    }
    print(json.dumps(report))
    ok = not wrong and not unexpected and (duplicates == 0 or args.consumers_rule) and wrong_keys == 0 and unparsable == 0
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as err:  # a connection or usage error: say it in one line
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        sys.exit(2)

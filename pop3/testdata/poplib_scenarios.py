"""POP3 scenarios with Python's poplib against Homing's server.

Run by pop3/poplib_test.go with Debian's /usr/bin/python3:

    poplib_scenarios.py SCENARIO SPEC.json

SPEC.json holds the port(s), the account and the messages stored in its
INBOX (in order). Each scenario asserts what it sees and exits non-zero
with the reason on the first difference; the Go test then checks the
backend's state (what was deleted).
"""

import base64
import json
import poplib
import ssl
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def lines_of(raw):
    # poplib returns a message as its lines, unstuffed, without line ends
    # (the messages of the spec end with CRLF).
    return raw.encode().split(b"\r\n")[:-1]


def expect_error(fn, code):
    try:
        resp = fn()
    except poplib.error_proto as e:
        text = e.args[0]
        check(text.startswith(b"-ERR [" + code.encode() + b"]"), "want -ERR [%s], got %r" % (code, text))
        return
    fail("want -ERR [%s], got %r" % (code, resp))


def login_and_read(p, spec):
    msgs = spec["messages"]
    check(p.getwelcome().startswith(b"+OK"), "greeting %r" % p.getwelcome())
    p.user(spec["user"])
    resp = p.pass_(spec["password"])
    check(resp.startswith(b"+OK"), "PASS: %r" % resp)
    count, size = p.stat()
    check(count == len(msgs), "STAT count %d, want %d" % (count, len(msgs)))
    check(size == sum(len(m["raw"]) for m in msgs), "STAT size %d" % size)
    resp, listing, _ = p.list()
    want = [b"%d %d" % (i + 1, len(m["raw"])) for i, m in enumerate(msgs)]
    check(listing == want, "LIST %r, want %r" % (listing, want))
    resp, uids, _ = p.uidl()
    want = [b"%d %s" % (i + 1, m["id"].encode()) for i, m in enumerate(msgs)]
    check(uids == want, "UIDL %r, want %r" % (uids, want))
    for i, m in enumerate(msgs):
        resp, lines, octets = p.retr(i + 1)
        check(lines == lines_of(m["raw"]), "RETR %d: %r, want %r" % (i + 1, lines, lines_of(m["raw"])))
        # octets counts what poplib read, stuffing and line ends included.
        check(octets >= len(m["raw"]), "RETR %d: %d octets read" % (i + 1, octets))
        head = m["raw"].split("\r\n\r\n", 1)[0]
        resp, lines, _ = p.top(i + 1, 0)
        check(lines == lines_of(head + "\r\n\r\n"), "TOP %d 0: %r" % (i + 1, lines))


def scenario_plain(spec):
    p = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"):
        check(cap in caps, "CAPA lacks %s: %r" % (cap, caps))
    check(caps.get("SASL") == ["PLAIN"], "CAPA SASL %r" % caps.get("SASL"))
    login_and_read(p, spec)
    p.dele(1)
    count, _ = p.stat()
    check(count == len(spec["messages"]) - 1, "STAT after DELE: %d" % count)
    p.rset()
    count, _ = p.stat()
    check(count == len(spec["messages"]), "STAT after RSET: %d" % count)
    p.dele(1)
    try:
        p.retr(1)
        fail("RETR of a deleted message succeeded")
    except poplib.error_proto:
        pass
    p.noop()
    resp = p.quit()
    check(resp.startswith(b"+OK") and b"1 messages deleted" in resp, "QUIT %r" % resp)


def scenario_stls(spec):
    ctx = ssl.create_default_context(cafile=spec["cafile"])
    p = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    check("STLS" in p.capa(), "no STLS in CAPA")
    p.stls(context=ctx)
    caps = p.capa()
    check("STLS" not in caps, "STLS still in CAPA after STLS: %r" % caps)
    check(p.sock.version() is not None, "not TLS")
    login_and_read(p, spec)
    resp = p.quit()
    check(resp.startswith(b"+OK"), "QUIT %r" % resp)


def scenario_pop3s(spec):
    ctx = ssl.create_default_context(cafile=spec["cafile"])
    p = poplib.POP3_SSL("127.0.0.1", spec["tls_port"], context=ctx, timeout=10)
    check("STLS" not in p.capa(), "STLS offered over implicit TLS")
    login_and_read(p, spec)
    p.dele(len(spec["messages"]))
    resp = p.quit()
    check(b"1 messages deleted" in resp, "QUIT %r" % resp)


def scenario_auth_plain(spec):
    token = base64.b64encode(b"\0" + spec["user"].encode() + b"\0" + spec["password"].encode()).decode()
    # With an initial response (RFC 5034).
    p = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    resp = p._shortcmd("AUTH PLAIN " + token)
    check(resp.startswith(b"+OK"), "AUTH PLAIN with an initial response: %r" % resp)
    check(p.stat()[0] == len(spec["messages"]), "STAT after AUTH")
    p.quit()
    # The continuation, cancelled with "*", then completed.
    p = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    p._putcmd("AUTH PLAIN")
    line, _ = p._getline()
    check(line == b"+ ", "challenge %r" % line)
    p._putcmd("*")
    try:
        p._getresp()
        fail("a cancelled AUTH succeeded")
    except poplib.error_proto as e:
        check(e.args[0].startswith(b"-ERR"), "cancel: %r" % e.args[0])
    p._putcmd("AUTH PLAIN")
    line, _ = p._getline()
    check(line == b"+ ", "challenge %r" % line)
    p._putcmd(token)
    resp = p._getresp()
    check(resp.startswith(b"+OK"), "AUTH PLAIN continuation: %r" % resp)
    p.quit()


def scenario_refusals(spec):
    # A wrong password: -ERR [AUTH] (RFC 3206).
    p = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    p.user(spec["user"])
    expect_error(lambda: p.pass_("wrong"), "AUTH")
    # The maildrop locked by another session: -ERR [IN-USE] (RFC 2449).
    first = poplib.POP3("127.0.0.1", spec["port"], timeout=10)
    first.user(spec["user"])
    first.pass_(spec["password"])
    p.user(spec["user"])
    expect_error(lambda: p.pass_(spec["password"]), "IN-USE")
    first.quit()
    p.quit()


SCENARIOS = {
    "plain": scenario_plain,
    "stls": scenario_stls,
    "pop3s": scenario_pop3s,
    "auth-plain": scenario_auth_plain,
    "refusals": scenario_refusals,
}

if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        spec = json.load(f)
    SCENARIOS[sys.argv[1]](spec)
    print("ok")

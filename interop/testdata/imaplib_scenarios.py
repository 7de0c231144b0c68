"""IMAP scenarios with Python's imaplib against a real Homing node.

Run by interop/imaplib_test.go with Debian's /usr/bin/python3:

    imaplib_scenarios.py SCENARIO SPEC.json

SPEC.json holds the node's IMAP and SMTP ports and an account of its own
(a fresh, empty mailbox) for the scenario. Each scenario checks every
answer of the server it gets and exits non-zero with the reason on the
first difference; it prints "ok" at the end.
"""

import base64
import imaplib
import json
import re
import smtplib
import socket
import sys
import time

# The commands imaplib has no method or state entry for.
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ok(resp, what):
    typ, data = resp
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data


def connect(spec):
    m = imaplib.IMAP4("127.0.0.1", spec["port"], timeout=30)
    return m


def login(spec):
    m = connect(spec)
    ok(m.login(spec["user"], spec["password"]), "LOGIN")
    return m


def raw(m, line):
    """Sends one command line as it is (in any state, whatever imaplib
    thinks of it) and returns the tagged answer and the untagged lines
    before it."""
    tag = m._new_tag()
    m.send(tag + b" " + line + b"\r\n")
    untagged = []
    while True:
        l = m.readline()
        check(l != b"", "%r: the server closed the connection" % line)
        l = l.rstrip(b"\r\n")
        if l.startswith(tag + b" "):
            return l[len(tag) + 1:], untagged
        untagged.append(l)


def expect_answer(m, line, prefix):
    """raw(line) must be answered with prefix (such as b"BAD" or
    b"NO [NONEXISTENT]"), and the session must go on."""
    got, _ = raw(m, line)
    check(got.startswith(prefix), "%r: %r, want %r" % (line, got, prefix))
    got, _ = raw(m, b"NOOP")
    check(got.startswith(b"OK"), "NOOP after %r: %r" % (line, got))


def code(data):
    """The response code of a tagged answer's text: b"[TRYCREATE] ..." ->
    "TRYCREATE"."""
    text = data[-1] if isinstance(data, list) else data
    if isinstance(text, bytes):
        text = text.decode()
    mt = re.match(r"\[([^\] ]+)", text)
    return mt.group(1) if mt else ""


PLAIN = (
    "From: Alice Example <alice@example.net>\r\n"
    "To: Reader <{user}>\r\n"
    "Cc: carol@example.org\r\n"
    "Subject: {subject}\r\n"
    "Date: Mon, 06 May 2024 07:08:09 +0000\r\n"
    "Message-ID: <{mid}@interop.test>\r\n"
    "\r\n"
    "{body}\r\n"
)

ATTACHMENT = b"\x00\x01binary attachment bytes\xff" * 20

MULTIPART = (
    "From: Bob <bob@example.net>\r\n"
    "To: {user}\r\n"
    "Subject: with an attachment\r\n"
    "Date: Tue, 07 May 2024 10:00:00 +0200\r\n"
    "Message-ID: <multi@interop.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "The text part.\r\n"
    "--b1\r\n"
    "Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename=\"a.bin\"\r\n"
    "\r\n"
    + base64.encodebytes(ATTACHMENT).decode().replace("\n", "\r\n")
    + "--b1--\r\n"
)


def plain(spec, subject, body="hello", mid=None):
    return PLAIN.format(user=spec["user"], subject=subject, body=body, mid=mid or subject.replace(" ", "-")).encode()


def append(m, folder, flags, date, msg):
    data = ok(m.append(folder, flags, date, msg), "APPEND to %s" % folder)
    mt = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[-1])
    check(mt is not None, "APPEND without APPENDUID: %r" % data)
    return int(mt.group(1)), int(mt.group(2))


def fetch_items(data):
    """imaplib's FETCH data as {seq: bytes of the response, literals
    inlined}."""
    out, cur = {}, b""
    for d in data:
        if isinstance(d, tuple):
            cur += d[0] + d[1]
        elif d is not None:
            cur += d
            mt = re.match(rb"(\d+) \(", cur)
            if mt and cur.endswith(b")"):
                out[int(mt.group(1))] = cur
                cur = b""
    return out


def literal_of(data, item):
    """The literal that follows item (b"BODY[]") in FETCH data."""
    for d in data:
        if isinstance(d, tuple) and item in d[0]:
            return d[1]
    fail("no %r in %r" % (item, data))


def scenario_login(spec):
    m = connect(spec)
    caps = m.capabilities
    for c in ("IMAP4REV2", "IMAP4REV1", "STARTTLS", "AUTH=PLAIN"):
        check(c in caps, "greeting capabilities %r lack %s" % (caps, c))
    check("LOGINDISABLED" not in caps, "LOGINDISABLED on loopback")
    try:
        m.login(spec["user"], "wrong-password")
        fail("LOGIN with a wrong password succeeded")
    except imaplib.IMAP4.error as e:
        check(b"[AUTHENTICATIONFAILED]" in e.args[0] if isinstance(e.args[0], bytes) else "[AUTHENTICATIONFAILED]" in e.args[0],
              "wrong password: %r" % (e.args,))
    # Not logged in: the mailbox commands are refused, the session goes on.
    expect_answer(m, b"SELECT INBOX", b"BAD")
    expect_answer(m, b"FETCH 1 FLAGS", b"BAD")
    expect_answer(m, b"GETQUOTAROOT INBOX", b"BAD")
    # ID works before login.
    typ, data = m._simple_command("ID", '("name" "imaplib" "version" "%d.%d")' % sys.version_info[:2])
    check(typ == "OK", "ID: %s %r" % (typ, data))
    typ, idr = m._untagged_response(typ, data, "ID")
    check(b'"name" "Homing"' in idr[0], "ID answer %r" % idr)
    data = ok(m.login(spec["user"], spec["password"]), "LOGIN")
    check(b"[CAPABILITY " in data[0], "LOGIN's OK without capabilities: %r" % data)
    typ, data = m.capability()
    caps = data[0].split()
    m.capabilities = tuple(c.decode().upper() for c in caps)  # imaplib keeps the greeting's
    for c in (b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE", b"NAMESPACE", b"QUOTA", b"ENABLE", b"ID", b"LIST-STATUS"):
        check(c in caps, "capabilities after login %r lack %r" % (caps, c))
    for c in (b"STARTTLS", b"AUTH=PLAIN", b"LOGINDISABLED"):
        check(c not in caps, "capabilities after login list %r" % c)
    check(sum(1 for c in caps if c.startswith(b"APPENDLIMIT=")) == 1, "APPENDLIMIT not listed once: %r" % caps)
    expect_answer(m, b"LOGIN " + spec["user"].encode() + b" x", b"BAD")
    expect_answer(m, b"STARTTLS", b"BAD")
    data = ok(m.namespace(), "NAMESPACE")
    check(data == [b'(("" "/")) NIL NIL'], "NAMESPACE %r" % data)
    typ, data = m.enable("UTF8=ACCEPT")
    check(typ == "OK", "ENABLE: %s %r" % (typ, data))
    typ, en = m._untagged_response(typ, data, "ENABLED")
    check(en == [b"UTF8=ACCEPT"], "ENABLED %r" % en)
    typ, data = m.enable("X-NOT-A-THING")
    check(typ == "OK", "ENABLE of an unknown extension: %s %r" % (typ, data))
    ok(m.noop(), "NOOP")
    typ, data = m.logout()
    check(typ == "BYE", "LOGOUT: %s %r" % (typ, data))

    # AUTHENTICATE PLAIN, with the initial response.
    m = connect(spec)
    creds = ("\0%s\0%s" % (spec["user"], spec["password"])).encode()
    ok(m.authenticate("PLAIN", lambda _: creds), "AUTHENTICATE PLAIN")
    ok(m.select("INBOX"), "SELECT after AUTHENTICATE")
    m.logout()
    m = connect(spec)
    try:
        m.authenticate("PLAIN", lambda _: ("\0%s\0wrong" % spec["user"]).encode())
        fail("AUTHENTICATE PLAIN with a wrong password succeeded")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e), "AUTHENTICATE with a wrong password: %r" % (e.args,))
    expect_answer(m, b"AUTHENTICATE X-UNKNOWN", b"NO")
    m.logout()


def scenario_folders(spec):
    m = login(spec)
    data = ok(m.list(), "LIST")
    folders = {}
    for d in data:
        mt = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', d)
        check(mt is not None, "LIST line %r" % d)
        folders[mt.group(2).decode()] = mt.group(1).split()
    for name, use in (("INBOX", None), ("Sent", b"\\Sent"), ("Drafts", b"\\Drafts"), ("Trash", b"\\Trash"),
                      ("Junk", b"\\Junk"), ("Archive", b"\\Archive")):
        check(name in folders, "LIST lacks %s: %r" % (name, data))
        if use:
            check(use in folders[name], "%s without %r: %r" % (name, use, folders[name]))
    # LIST (SPECIAL-USE): only the special-use folders.
    typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    check(typ == "OK", "LIST (SPECIAL-USE): %s %r" % (typ, data))
    typ, data = m._untagged_response(typ, data, "LIST")
    names = sorted(re.search(rb'"/" "?([^"]*)"?$', d).group(1) for d in data)
    check(names == [b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"], "LIST (SPECIAL-USE) %r" % names)

    append(m, "INBOX", None, None, plain(spec, "first"))
    append(m, "INBOX", "(\\Seen)", None, plain(spec, "second"))
    # LIST ... RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN)).
    typ, data = m._simple_command("LIST", '""', "*", "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))")
    check(typ == "OK", "LIST RETURN STATUS: %s %r" % (typ, data))
    typ, st = m._untagged_response(typ, data, "STATUS")
    m.untagged_responses.pop("LIST", None)
    check(b"INBOX (MESSAGES 2 UNSEEN 1)" in st, "LIST RETURN STATUS's STATUS %r" % st)
    check(b'"Sent" (MESSAGES 0 UNSEEN 0)' in st, "LIST RETURN STATUS's STATUS %r" % st)

    data = ok(m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)"), "STATUS")
    mt = re.match(rb'"?INBOX"? \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY (\d+) UNSEEN 1 SIZE (\d+)\)', data[0])
    check(mt is not None, "STATUS %r" % data)
    check(int(mt.group(2)) == len(plain(spec, "first")) + len(plain(spec, "second")), "STATUS SIZE %r" % data)
    typ, data = m.status("Nope", "(MESSAGES)")
    check(typ == "NO" and code(data) == "NONEXISTENT", "STATUS of a missing folder: %s %r" % (typ, data))
    expect_answer(m, b"STATUS INBOX (NOT-AN-ITEM)", b"BAD")

    # Hierarchy: create, children, rename, subscribe, delete.
    ok(m.create("Projects/2025"), "CREATE Projects/2025")
    typ, data = m.create("Projects/2025")
    check(typ == "NO" and code(data) == "ALREADYEXISTS", "CREATE again: %s %r" % (typ, data))
    typ, data = m.create("INBOX")
    check(typ == "NO", "CREATE INBOX: %s %r" % (typ, data))
    data = ok(m.list('""', "Projects*"), "LIST Projects*")
    check(any(b"\\HasChildren" in d and re.search(rb' "?Projects"?$', d) for d in data), "Projects has no \\HasChildren: %r" % data)
    check(any(re.search(rb' "?Projects/2025"?$', d) for d in data), "LIST lacks Projects/2025: %r" % data)
    ok(m.rename("Projects", "Work"), "RENAME Projects Work")
    data = ok(m.list('""', "Work/*"), "LIST Work/*")
    check(len(data) == 1 and re.search(rb' "?Work/2025"?$', data[0]), "the child did not follow the rename: %r" % data)
    typ, data = m.rename("Nope", "Nope2")
    check(typ == "NO" and code(data) == "NONEXISTENT", "RENAME of a missing folder: %s %r" % (typ, data))
    ok(m.subscribe("Work/2025"), "SUBSCRIBE")
    data = ok(m.lsub('""', "*"), "LSUB")
    check(any(re.search(rb' "?Work/2025"?$', d) for d in data), "LSUB lacks Work/2025: %r" % data)
    ok(m.unsubscribe("Work/2025"), "UNSUBSCRIBE")
    data = ok(m.lsub('""', "Work/*"), "LSUB")
    check(data == [None], "LSUB after UNSUBSCRIBE: %r" % data)
    ok(m.delete("Work/2025"), "DELETE Work/2025")
    typ, data = m.delete("Work/2025")
    check(typ == "NO" and code(data) == "NONEXISTENT", "DELETE again: %s %r" % (typ, data))
    typ, data = m.delete("INBOX")
    check(typ == "NO", "DELETE INBOX: %s %r" % (typ, data))

    # SELECT and EXAMINE.
    typ, data = m.select("Nope")
    check(typ == "NO" and code(data) == "NONEXISTENT", "SELECT of a missing folder: %s %r" % (typ, data))
    typ, data = m.select("INBOX", readonly=True)
    check(typ == "OK" and data == [b"2"], "EXAMINE: %s %r" % (typ, data))
    check(m.untagged_responses.get("READ-ONLY") is not None, "EXAMINE without [READ-ONLY]: %r" % m.untagged_responses)
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
    check(typ == "NO", "STORE in EXAMINE: %s %r" % (typ, data))
    typ, data = m.select("INBOX")
    check(typ == "OK" and data == [b"2"], "SELECT: %s %r" % (typ, data))
    check(m.untagged_responses.get("READ-WRITE") is not None, "SELECT without [READ-WRITE]")
    uidv = m.untagged_responses.get("UIDVALIDITY")
    check(uidv is not None and int(uidv[0]) == int(mt.group(1)), "SELECT's UIDVALIDITY %r, STATUS said %s" % (uidv, mt.group(1)))
    check(m.untagged_responses.get("UIDNEXT") == [b"3"], "SELECT's UIDNEXT %r" % m.untagged_responses.get("UIDNEXT"))

    # GETQUOTAROOT: the account's usage in KiB and its message count.
    typ, data = m.getquotaroot("INBOX")
    check(typ == "OK", "GETQUOTAROOT: %s %r" % (typ, data))
    check(data[0] == [b'"INBOX" ""'], "QUOTAROOT %r" % data[0])
    mt = re.match(rb'"" \(STORAGE (\d+) (\d+) MESSAGE 2 (\d+)\)', data[1][0])
    check(mt is not None, "QUOTA %r" % data[1])
    used = len(plain(spec, "first")) + len(plain(spec, "second"))
    check(int(mt.group(1)) == (used + 1023) // 1024, "QUOTA STORAGE %s KiB for %d bytes" % (mt.group(1), used))
    expect_answer(m, b"GETQUOTAROOT Nope", b"NO [NONEXISTENT]")
    typ, data = m.setquota('""', "(STORAGE 10)")
    check(typ == "NO" and code(data) == "NOPERM", "SETQUOTA: %s %r" % (typ, data))
    m.logout()


def scenario_append_fetch(spec):
    m = login(spec)
    date = '"04-Mar-2023 05:06:07 +0100"'
    msg = MULTIPART.format(user=spec["user"]).encode()
    uidvalidity, uid = append(m, "INBOX", "(\\Seen \\Flagged $Work)", date, msg)
    check(uid == 1, "the first APPEND's UID is %d" % uid)
    _, uid2 = append(m, "INBOX", None, None, plain(spec, "plain one", "line one\r\nline two"))
    check(uid2 == 2, "the second APPEND's UID is %d" % uid2)
    typ, data = m.append("Nope", None, None, plain(spec, "lost"))
    check(typ == "NO" and code(data) == "TRYCREATE", "APPEND to a missing folder: %s %r" % (typ, data))
    got, _ = raw(m, b"APPEND INBOX {40000000}")
    check(got.startswith(b"NO [TOOBIG]"), "APPEND of 40 MB: %r" % got)

    ok(m.select("INBOX"), "SELECT")
    data = ok(m.fetch("1", "(FLAGS UID INTERNALDATE RFC822.SIZE)"), "FETCH")
    r = data[0]
    check(b"UID 1" in r and b"RFC822.SIZE %d" % len(msg) in r, "FETCH 1: %r" % r)
    flags = re.search(rb"FLAGS \(([^)]*)\)", r).group(1).split()
    check(sorted(flags) == sorted([b"\\Seen", b"\\Flagged", b"$Work"]), "the APPENDed flags: %r" % flags)
    # The same instant (the server may tell it in another zone).
    idate = imaplib.Internaldate2tuple(r)
    check(idate is not None and time.mktime(idate) == time.mktime(imaplib.Internaldate2tuple(b'INTERNALDATE "04-Mar-2023 05:06:07 +0100"')),
          "the APPENDed date: %r" % r)

    data = ok(m.fetch("1:2", "(ENVELOPE)"), "FETCH ENVELOPE")
    items = fetch_items(data)
    check(b'"with an attachment"' in items[1] and b'("Bob" NIL "bob" "example.net")' in items[1], "ENVELOPE 1: %r" % items[1])
    check(b'"<multi@interop.test>"' in items[1], "ENVELOPE 1's Message-ID: %r" % items[1])
    check(b'(("Alice Example" NIL "alice" "example.net"))' in items[2], "ENVELOPE 2's From: %r" % items[2])
    check(b'((NIL NIL "carol" "example.org"))' in items[2], "ENVELOPE 2's Cc: %r" % items[2])

    data = ok(m.fetch("1", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    bs = fetch_items(data)[1]
    check(re.search(rb'\("text" "plain" \("charset" "utf-8"\) NIL NIL "7bit" 14 0', bs, re.I) is not None, "BODYSTRUCTURE's text part: %r" % bs)
    check(re.search(rb'\("application" "octet-stream" \("name" "a.bin"\) NIL NIL "base64" \d+', bs, re.I) is not None, "BODYSTRUCTURE's attachment: %r" % bs)
    check(b'"mixed"' in bs.lower() and b'"boundary" "b1"' in bs.lower(), "BODYSTRUCTURE's multipart: %r" % bs)

    data = ok(m.fetch("2", "(BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    check(literal_of(data, b"BODY[]") == plain(spec, "plain one", "line one\r\nline two"), "BODY[] of 2: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[]<0.20>)"), "FETCH BODY.PEEK[]<0.20>")
    check(literal_of(data, b"BODY[]<0>") == msg[:20], "BODY[]<0.20>: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[]<10.5>)"), "FETCH BODY.PEEK[]<10.5>")
    check(literal_of(data, b"BODY[]<10>") == msg[10:15], "BODY[]<10.5>: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[]<%d.100>)" % (len(msg) - 3)), "FETCH past the end")
    check(literal_of(data, b"BODY[]<") == msg[-3:], "a partial past the end: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"), "FETCH HEADER.FIELDS")
    check(literal_of(data, b"HEADER.FIELDS") == b"From: Bob <bob@example.net>\r\nSubject: with an attachment\r\n\r\n", "HEADER.FIELDS: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER])"), "FETCH HEADER")
    check(literal_of(data, b"HEADER]") == msg[:msg.index(b"\r\n\r\n") + 4], "HEADER: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[1])"), "FETCH BODY[1]")
    check(literal_of(data, b"BODY[1]") == b"The text part.", "BODY[1]: %r" % data)
    data = ok(m.fetch("1", "(BODY.PEEK[2.MIME])"), "FETCH BODY[2.MIME]")
    check(literal_of(data, b"BODY[2.MIME]").startswith(b"Content-Type: application/octet-stream"), "BODY[2.MIME]: %r" % data)
    data = ok(m.fetch("1", "(BINARY.PEEK[2])"), "FETCH BINARY[2]")
    check(literal_of(data, b"BINARY[2]") == ATTACHMENT, "BINARY[2] is not the attachment's bytes: %r" % data[:1])
    data = ok(m.fetch("2", "(BODY.PEEK[TEXT])"), "FETCH BODY[TEXT]")
    check(literal_of(data, b"BODY[TEXT]") == b"line one\r\nline two\r\n", "BODY[TEXT]: %r" % data)

    # PEEK leaves \Seen alone; BODY[] sets it.
    data = ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Seen" not in data[0], "BODY.PEEK set \\Seen: %r" % data)
    data = ok(m.fetch("2", "(BODY[TEXT])"), "FETCH BODY[TEXT]")
    check(b"\\Seen" in b"".join(d[0] if isinstance(d, tuple) else d for d in data), "BODY[] did not tell \\Seen: %r" % data)
    data = ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Seen" in data[0], "BODY[] did not set \\Seen: %r" % data)

    # UID FETCH and the macros.
    data = ok(m.uid("FETCH", "1:*", "(FLAGS)"), "UID FETCH")
    items = fetch_items(data)
    check(sorted(items) == [1, 2] and all(b"UID" in v for v in items.values()), "UID FETCH 1:*: %r" % data)
    data = ok(m.fetch("1:*", "FAST"), "FETCH FAST")
    check(len(fetch_items(data)) == 2 and b"RFC822.SIZE" in data[0], "FETCH FAST %r" % data)
    data = ok(m.uid("FETCH", "99", "(FLAGS)"), "UID FETCH of a missing UID")
    check(data == [None], "UID FETCH 99: %r" % data)

    expect_answer(m, b"FETCH 1 (NOT-AN-ITEM)", b"BAD")
    expect_answer(m, b"FETCH x (FLAGS)", b"BAD")
    expect_answer(m, b"FETCH 0 (FLAGS)", b"BAD")
    expect_answer(m, b"FETCH 1 (BODY[1.x])", b"BAD")
    expect_answer(m, b"FETCH 1 (FLAGS", b"BAD")
    m.logout()


def scenario_store_search(spec):
    m = login(spec)
    msgs = [
        ("alpha report", "the quarterly numbers", None, '"01-Jan-2024 10:00:00 +0000"'),
        ("beta notes", "nothing to see", "(\\Seen)", '"15-Feb-2024 10:00:00 +0000"'),
        ("gamma report", "a much longer body " * 50, "(\\Flagged)", '"20-Mar-2024 10:00:00 +0000"'),
        ("delta", "numbers again", "(\\Seen \\Answered)", '"10-Apr-2024 10:00:00 +0000"'),
    ]
    for subj, body, flags, date in msgs:
        append(m, "INBOX", flags, date, plain(spec, subj, body))
    ok(m.select("INBOX"), "SELECT")

    data = ok(m.store("1", "+FLAGS", "(\\Flagged $Todo)"), "STORE +FLAGS")
    check(re.search(rb"FLAGS \(([^)]*)\)", data[0]) and sorted(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split()) == [b"$Todo", b"\\Flagged"],
          "STORE +FLAGS answer %r" % data)
    data = ok(m.store("1", "-FLAGS", "($Todo)"), "STORE -FLAGS")
    check(b"$Todo" not in data[0] and b"\\Flagged" in data[0], "STORE -FLAGS answer %r" % data)
    data = ok(m.store("2", "+FLAGS.SILENT", "(\\Deleted)"), "STORE +FLAGS.SILENT")
    check(data == [None], "STORE .SILENT answered FETCH: %r" % data)
    data = ok(m.store("2", "-FLAGS.SILENT", "(\\Deleted)"), "STORE -FLAGS.SILENT")
    data = ok(m.store("4", "FLAGS", "(\\Draft)"), "STORE FLAGS")
    check(re.search(rb"FLAGS \(\\Draft\)", data[0]) is not None, "STORE FLAGS answer %r" % data)
    data = ok(m.uid("STORE", "3", "+FLAGS", "(\\Seen)"), "UID STORE")
    check(b"UID 3" in data[0], "UID STORE answer without the UID: %r" % data)
    data = ok(m.fetch("1:4", "(FLAGS)"), "FETCH FLAGS")
    got = [sorted(re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split()) for d in data]
    check(got == [[b"\\Flagged"], [b"\\Seen"], [b"\\Flagged", b"\\Seen"], [b"\\Draft"]], "flags after the STOREs: %r" % got)
    # \Recent cannot be set by a client (RFC 3501 2.3.2; gone in IMAP4rev2).
    ok(m.store("1", "+FLAGS", "(\\Recent)"), "STORE \\Recent")
    data = ok(m.fetch("1", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Recent" not in data[0], "STORE set \\Recent: %r" % data)
    expect_answer(m, b"STORE 1 +FLAGS (\\Bogus)", b"BAD")
    expect_answer(m, b"STORE 1 SOMETHING (\\Seen)", b"BAD")
    expect_answer(m, b"STORE 1:x +FLAGS (\\Seen)", b"BAD")

    def search(*criteria, uid=False):
        data = ok(m.uid("SEARCH", *criteria) if uid else m.search(None, *criteria), "SEARCH %r" % (criteria,))
        return [int(x) for x in data[0].split()]

    for crit, want in [
        (("ALL",), [1, 2, 3, 4]),
        (("FLAGGED",), [1, 3]),
        (("UNSEEN",), [1, 4]),
        (("SEEN", "FLAGGED"), [3]),
        (("DRAFT",), [4]),
        (("SUBJECT", "report"), [1, 3]),
        (("FROM", "alice@example.net"), [1, 2, 3, 4]),
        (("TO", spec["user"]), [1, 2, 3, 4]),
        (("BODY", "numbers"), [1, 4]),
        (("TEXT", "quarterly"), [1]),
        (("HEADER", "Message-ID", "beta-notes@interop.test"), [2]),
        (("LARGER", "600"), [3]),
        (("SMALLER", "600"), [1, 2, 4]),
        (("SINCE", "01-Mar-2024"), [3, 4]),
        (("BEFORE", "01-Feb-2024"), [1]),
        (("ON", "15-Feb-2024"), [2]),
        (("SENTSINCE", "01-May-2024"), [1, 2, 3, 4]),
        (("OR", "DRAFT", "SUBJECT", "beta"), [2, 4]),
        (("NOT", "SEEN"), [1, 4]),
        (("2:3",), [2, 3]),
        (("UID", "3:*"), [3, 4]),
        (("SUBJECT", "nowhere"), []),
    ]:
        got = search(*crit)
        check(got == want, "SEARCH %r: %r, want %r" % (crit, got, want))
    got = search("FLAGGED", uid=True)
    check(got == [1, 3], "UID SEARCH FLAGGED: %r" % got)
    typ, data = m.search("UTF-8", "SUBJECT", "alpha")
    check(typ == "OK" and data == [b"1"], "SEARCH CHARSET UTF-8: %s %r" % (typ, data))
    typ, data = m.search("KOI8-R", "SUBJECT", "alpha")
    check(typ == "NO" and code(data) == "BADCHARSET", "SEARCH with an unknown charset: %s %r" % (typ, data))
    expect_answer(m, b"SEARCH NOT-A-KEY", b"BAD")
    expect_answer(m, b"SEARCH SINCE 32-Foo-2024", b"BAD")
    expect_answer(m, b"SEARCH LARGER x", b"BAD")
    expect_answer(m, b"UID SEARCH UID 1:x", b"BAD")
    expect_answer(m, b"SEARCH (SEEN", b"BAD")
    m.logout()


def scenario_copy_move_expunge(spec):
    m = login(spec)
    for i in range(1, 7):
        append(m, "INBOX", "(\\Flagged)" if i == 1 else None, None, plain(spec, "message %d" % i))
    typ, data = m.select("INBOX")
    check(data == [b"6"], "SELECT: %r" % data)
    _, st = m.status("Archive", "(UIDVALIDITY)")
    arch_validity = int(re.search(rb"UIDVALIDITY (\d+)", st[0]).group(1))

    data = ok(m.copy("1:2", "Archive"), "COPY")
    mt = re.match(rb"\[COPYUID (\d+) 1:2 1:2\]", data[-1])
    check(mt is not None and int(mt.group(1)) == arch_validity, "COPY without the right COPYUID: %r" % data)
    typ, data = m.copy("1", "Nope")
    check(typ == "NO" and code(data) == "TRYCREATE", "COPY to a missing folder: %s %r" % (typ, data))
    expect_answer(m, b"COPY 99 Archive", b"OK")  # no such message: nothing to copy (RFC 9051 §6.4.7)

    # MOVE of 3: COPYUID, then EXPUNGE 3 (sequence numbers shift).
    typ, data = m._simple_command("MOVE", "3", "Trash")
    check(typ == "OK", "MOVE: %s %r" % (typ, data))
    typ, exp = m._untagged_response(typ, data, "EXPUNGE")
    check(exp == [b"3"], "MOVE's EXPUNGE %r" % exp)
    cu = m.untagged_responses.pop("OK", [])
    check(any(re.match(rb"\[COPYUID \d+ 3 1\]", x) for x in cu) or re.match(rb"\[COPYUID \d+ 3 1\]", data[-1]),
          "MOVE's COPYUID: %r %r" % (cu, data))
    typ, data = m._simple_command("MOVE", "1", "Nope")
    check(typ == "NO" and code(data) == "TRYCREATE", "MOVE to a missing folder: %s %r" % (typ, data))
    data = ok(m.uid("MOVE", "4", "Archive"), "UID MOVE")
    check(m.untagged_responses.pop("EXPUNGE", None) == [b"3"], "UID MOVE 4's EXPUNGE (4 is sequence number 3)")

    # Now INBOX holds UIDs 1 2 5 6; STORE \Deleted on 2 and 5, UID EXPUNGE only 5.
    data = ok(m.uid("SEARCH", "ALL"), "UID SEARCH ALL")
    check(data == [b"1 2 5 6"], "UIDs after the moves: %r" % data)
    ok(m.uid("STORE", "2,5", "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE \\Deleted")
    typ, data = m.uid("EXPUNGE", "5")
    check(typ == "OK", "UID EXPUNGE 5: %s %r" % (typ, data))
    typ, exp = m._untagged_response(typ, data, "EXPUNGE")
    check(exp == [b"3"], "UID EXPUNGE 5's EXPUNGE %r (5 is sequence number 3)" % exp)
    data = ok(m.uid("SEARCH", "ALL"), "UID SEARCH ALL")
    check(data == [b"1 2 6"], "UIDs after UID EXPUNGE 5: %r" % data)
    typ, data = m.expunge()
    check(typ == "OK" and data == [b"2"], "EXPUNGE: %s %r" % (typ, data))
    data = ok(m.uid("SEARCH", "ALL"), "UID SEARCH ALL")
    check(data == [b"1 6"], "UIDs after EXPUNGE: %r" % data)
    expect_answer(m, b"UID EXPUNGE x", b"BAD")

    # CLOSE expunges \Deleted silently; UNSELECT does not.
    ok(m.store("2", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    ok(m.unselect(), "UNSELECT")
    _, st = m.status("INBOX", "(MESSAGES)")
    check(b"MESSAGES 2" in st[0], "UNSELECT expunged: %r" % st)
    ok(m.select("INBOX"), "SELECT")
    ok(m.close(), "CLOSE")
    _, st = m.status("INBOX", "(MESSAGES)")
    check(b"MESSAGES 1" in st[0], "CLOSE did not expunge the \\Deleted message: %r" % st)

    # What the other folders got: Archive 1, 2 (COPY) and 4 (MOVE, its \Flagged kept? 4 had none);
    # Trash 3.
    ok(m.select("Archive"), "SELECT Archive")
    data = ok(m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH in Archive")
    subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
    check(subjects == [b"Subject: message 1", b"Subject: message 2", b"Subject: message 4"], "Archive holds %r" % subjects)
    check(b"\\Flagged" in data[0][0], "COPY did not keep \\Flagged: %r" % data[0][0])
    ok(m.select("Trash"), "SELECT Trash")
    data = ok(m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH in Trash")
    check([d[1].strip() for d in data if isinstance(d, tuple)] == [b"Subject: message 3"], "Trash holds %r" % data)
    m.logout()


def scenario_idle(spec):
    a = login(spec)
    b = login(spec)
    ok(a.select("INBOX"), "A SELECT")
    ok(b.select("INBOX"), "B SELECT")
    tag = a._new_tag()
    a.send(tag + b" IDLE\r\n")
    cont = a.readline()
    check(cont.startswith(b"+"), "IDLE: %r" % cont)
    a.sock.settimeout(10)

    def expect_untagged(want):
        seen = []
        while True:
            try:
                l = a.readline()
            except socket.timeout:
                fail("no %r in IDLE within 10 s; got %r" % (want, seen))
            check(l != b"", "the connection closed in IDLE")
            seen.append(l)
            if re.match(want, l):
                return l

    # B appends: A sees EXISTS.
    append(b, "INBOX", None, None, plain(spec, "appended by B"))
    expect_untagged(rb"\* 1 EXISTS")
    # B flags it: A sees FETCH with the flag.
    ok(b.noop(), "B NOOP")
    ok(b.store("1", "+FLAGS", "(\\Flagged)"), "B STORE")
    expect_untagged(rb"\* 1 FETCH \(.*\\Flagged")
    # A delivery over SMTP: A sees EXISTS.
    s = smtplib.SMTP("127.0.0.1", spec["smtp_port"], timeout=30)
    s.sendmail("sender@remote.test", [spec["user"]], plain(spec, "delivered over SMTP"))
    s.quit()
    expect_untagged(rb"\* 2 EXISTS")
    # B expunges the first: A sees EXPUNGE.
    ok(b.store("1", "+FLAGS.SILENT", "(\\Deleted)"), "B STORE \\Deleted")
    ok(b.expunge(), "B EXPUNGE")
    expect_untagged(rb"\* 1 EXPUNGE")
    a.send(b"DONE\r\n")
    l = expect_untagged(re.escape(tag) + rb" ")
    check(l.startswith(tag + b" OK"), "IDLE's end: %r" % l)
    data = ok(a.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "A FETCH after IDLE")
    check([d[1].strip() for d in data if isinstance(d, tuple)] == [b"Subject: delivered over SMTP"], "A sees %r" % data)
    expect_answer(a, b"IDLE extra", b"BAD")
    a.logout()
    b.logout()


def scenario_bad_input(spec):
    m = login(spec)
    append(m, "INBOX", None, None, plain(spec, "one"))
    # Authenticated, nothing selected.
    for line, want in [
        (b"NOT-A-COMMAND", b"BAD"),
        (b"FETCH 1 FLAGS", b"BAD"),
        (b"EXPUNGE", b"BAD"),
        (b"SELECT", b"BAD"),
        (b'SELECT "unterminated', b"BAD"),
        (b"SELECT Nope", b"NO [NONEXISTENT]"),
        (b"EXAMINE Nope", b"NO [NONEXISTENT]"),
        (b"CREATE", b"BAD"),
        (b"RENAME INBOX", b"BAD"),
        (b"LIST", b"BAD"),
        (b"STATUS INBOX", b"BAD"),
        (b"STATUS INBOX (MESSAGES", b"BAD"),
        (b"APPEND", b"BAD"),
        (b"APPEND INBOX (\\Seen", b"BAD"),
        (b"APPEND Nope {3+}\r\nabc", b"NO [TRYCREATE]"),
        (b"GETQUOTAROOT", b"BAD"),
        (b"GETQUOTA \"x\"", b"NO [NONEXISTENT]"),
        (b"ID x", b"BAD"),
        (b"ENABLE", b"BAD"),
        (b"\xff\xfe", b"BAD"),
        (b"LOGIN a b", b"BAD"),
        (b"AUTHENTICATE PLAIN", b"BAD"),
    ]:
        expect_answer(m, line, want)
    # A line over imapserver's 50 KiB command limit.
    got, _ = raw(m, b"NOOP " + b"x" * 60000)
    check(got.startswith(b"BAD"), "a 60 KB line: %r" % got[:100])
    ok(m.noop(), "NOOP after the long line")
    ok(m.select("INBOX"), "SELECT")
    for line, want in [
        (b"FETCH", b"BAD"),
        (b"FETCH 1", b"BAD"),
        (b"FETCH * (FLAGS) extra", b"BAD"),
        (b"FETCH 1 (BODY[HEADER.FIELDS])", b"BAD"),
        (b"FETCH 1 (BODY[]<x>)", b"BAD"),
        (b"STORE 1 +FLAGS", b"BAD"),
        (b"COPY 1", b"BAD"),
        (b"MOVE 1", b"BAD"),
        (b"UID", b"BAD"),
        (b"UID NOT-A-COMMAND 1", b"BAD"),
        (b"SEARCH", b"BAD"),
        (b"SEARCH OR SEEN", b"BAD"),
        (b"SEARCH HEADER Subject", b"BAD"),
        (b"SEARCH BEFORE", b"BAD"),
    ]:
        expect_answer(m, line, want)
    m.logout()


if __name__ == "__main__":
    scenario, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file) as f:
        spec = json.load(f)
    globals()["scenario_" + scenario.replace("-", "_")](spec)
    print("ok")

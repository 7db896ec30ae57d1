#!/usr/bin/python3
"""Generate the differential DKIM corpus of package auth.

The mails of this directory are signed by dkimpy (Debian's python3-dkim,
an implementation independent of go-msgauth), with keys made here by
openssl and PyNaCl and published in zone.txt, a DNS zone file. Each case
is named after the clause of RFC 6376 (or RFC 8463) it exercises; cases.json
lists them with:

  want      the result RFC 6376 asks for each signature, in header order
            (top first), in RFC 8601 words, with a reason the verifier's
            reason must contain (want_reason);
  dkimpy    what dkimpy itself says of each signature, when this script
            verifies the mail against the same zone: pass (verify() is
            True), fail (False, or it raised "body hash mismatch") or
            permerror (it raised anything else); dkimpy_detail is its
            message;
  note      why want and dkimpy differ, where they do: the RFC wins.

auth/differential_test.go serves zone.txt from a DNS server on loopback
and checks auth.Verifier's result for every mail against want;
dev/differential_test.go sends every mail through the whole system.

Run it again (it replaces every file here but itself) with:

  apt-get install -y python3-dkim openssl
  /usr/bin/python3 auth/testdata/differential/gen.py

Keys are new on every run; the private keys are not kept.
"""

import base64
import json
import logging
import os
import re
import subprocess
import sys
import time

import dkim
import dkim.canonicalization
import dkim.crypto
import nacl.encoding
import nacl.signing

HERE = os.path.dirname(os.path.abspath(__file__))
D = b"a.example.test"
CRLF = b"\r\n"


def rsa_key():
    """Return a new 2048-bit RSA key: (PKCS#1 PEM, base64 SubjectPublicKeyInfo)."""
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                         check=True, capture_output=True).stdout
    return pem, base64.b64encode(der).decode()


def ed_key():
    """Return a new ed25519 key: (base64 seed, base64 public key)."""
    sk = nacl.signing.SigningKey.generate()
    return (sk.encode(encoder=nacl.encoding.Base64Encoder),
            sk.verify_key.encode(encoder=nacl.encoding.Base64Encoder).decode())


RSA_PEM, RSA_PUB = rsa_key()
ED_SEED, ED_PUB = ed_key()

# The zone: one TXT record per selector of a.example.test. "absent" has
# no record (NXDOMAIN).
KEYS = {
    "rsa": "v=DKIM1; p=" + RSA_PUB,
    "krsa": "v=DKIM1; k=rsa; p=" + RSA_PUB,
    "ts": "v=DKIM1; k=rsa; t=s; p=" + RSA_PUB,
    "ty": "v=DKIM1; k=rsa; t=y; p=" + RSA_PUB,
    "tys": "v=DKIM1; k=rsa; t=y:s; p=" + RSA_PUB,
    "hsha256": "v=DKIM1; k=rsa; h=sha256; p=" + RSA_PUB,
    "hsha1": "v=DKIM1; k=rsa; h=sha1; p=" + RSA_PUB,
    "semail": "v=DKIM1; k=rsa; s=email; p=" + RSA_PUB,
    "sstar": "v=DKIM1; k=rsa; s=*; p=" + RSA_PUB,
    "sother": "v=DKIM1; k=rsa; s=other; p=" + RSA_PUB,
    "revoked": "v=DKIM1; k=rsa; p=",
    "ed": "v=DKIM1; k=ed25519; p=" + ED_PUB,
    # An ed25519 key under the selector an rsa-sha256 signature names.
    "kmismatch": "v=DKIM1; k=ed25519; p=" + ED_PUB,
}


def zone_name(sel):
    return "%s._domainkey.%s." % (sel, D.decode())


def lookup(name, timeout=5):
    """dkimpy's dnsfunc over the zone above."""
    name = name.decode().lower()
    for sel, txt in KEYS.items():
        if zone_name(sel) == name:
            return txt.encode()
    return None


def mail(name, body=None, extra=b"", subject=None):
    """A mail of the corpus: extra header fields first, then the usual ones."""
    if body is None:
        body = (b"Hello Bob.\r\n\r\nThis  line has\tinner white space.   \r\n"
                b"And this one ends in spaces.  \r\n\r\n-- \r\nAlice\r\n")
    subject = subject if subject is not None else b"Corpus case " + name.encode()
    return (extra +
            b"From: Alice <alice@a.example.test>\r\n"
            b"To: Bob <bob@b.example.test>\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n"
            b"Message-ID: <" + name.encode() + b"@a.example.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"\r\n" + body)


HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def sign(msg, sel="rsa", canon=(b"relaxed", b"relaxed"), identity=None,
         headers=None, length=False, alg=None):
    """Sign msg with dkimpy and return it with the DKIM-Signature on top."""
    if alg is None:
        alg = b"ed25519-sha256" if sel == "ed" else b"rsa-sha256"
    key = ED_SEED if alg == b"ed25519-sha256" else RSA_PEM
    sig = dkim.sign(msg, sel.encode(), D, key, identity=identity, canonicalize=canon,
                    signature_algorithm=alg, include_headers=headers or HEADERS,
                    length=length)
    return sig + msg


def sign_tags(msg, sel="rsa", canon=b"relaxed/relaxed", identity=None, l=None,
              headers=None):
    """Sign msg with dkimpy's own header generator, with tags dkimpy's sign
    refuses to write: an i= that only case-insensitively ends in d=, an l=
    other than the body's length. bh= is the hash of the whole
    canonicalized body (or of its first l octets when l is shorter)."""
    d = dkim.DKIM(msg, signature_algorithm=b"rsa-sha256", linesep=CRLF)
    pk = dkim.crypto.parse_pem_private_key(RSA_PEM)
    policy = dkim.canonicalization.CanonicalizationPolicy.from_c_value(canon)
    include = tuple(headers or HEADERS)
    d.include_headers = include
    body = policy.canonicalize_body(d.body)
    if l is not None and re.fullmatch(rb"\d+", l) and int(l) < len(body):
        body = body[:int(l)]
    d.hasher = dkim.HASH_ALGORITHMS[b"rsa-sha256"]
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", canon), (b"d", D),
              (b"i", identity or b"@" + D)]
    if l is not None:
        fields.append((b"l", l))
    fields += [(b"q", b"dns/txt"), (b"s", sel.encode()),
               (b"t", str(int(time.time())).encode()),
               (b"h", b" : ".join(include)),
               (b"bh", base64.b64encode(d.hasher(body).digest())),
               (b"b", b"0" * 60)]
    return b"DKIM-Signature: " + d.gen_header(fields, include, policy, b"DKIM-Signature", pk) + msg


def canon_body_len(msg, canon):
    d = dkim.DKIM(msg)
    policy = dkim.canonicalization.CanonicalizationPolicy.from_c_value(b"relaxed/" + canon)
    return len(policy.canonicalize_body(d.body))


def replace(msg, old, new, count=1):
    assert old in msg, (old, msg)
    return msg.replace(old, new, count)


CASES = []


def case(name, raw, want, note=""):
    """Record a case; want is a list of (result, reason substring), one per
    signature in header order."""
    CASES.append({"name": name, "raw": raw, "want": want, "note": note})


def build():
    body = mail("x").split(b"\r\n\r\n", 1)[1]

    # Key record tags (RFC 6376 3.6.1).
    n = "6376-3.6.1-t=s-subdomain-i"
    case(n, sign(mail(n), "ts", identity=b"alice@sub.a.example.test"), [("permerror", "t=s")],
         "dkimpy does not read the key's t= flags; RFC 6376 3.6.1 forbids an i= domain that is a subdomain of d= under t=s")
    n = "6376-3.6.1-t=s-same-domain-i"
    case(n, sign(mail(n), "ts", identity=b"alice@a.example.test"), [("pass", "")])
    n = "6376-3.6.1-t=s-default-i"
    case(n, sign(mail(n), "ts"), [("pass", "")])
    n = "6376-3.6.1-t=y-testing"
    case(n, sign(mail(n), "ty"), [("pass", "")],
         "the verdict is pass; RFC 6376 3.6.1 also asks verifiers to treat testing-mode mail as unsigned, which is a matter of trust, not of the verdict")
    n = "6376-3.6.1-t=y+s-subdomain-i"
    case(n, sign(mail(n), "tys", identity=b"alice@sub.a.example.test"), [("permerror", "t=s")],
         "dkimpy does not read the key's t= flags")
    n = "6376-3.6.1-h=sha256"
    case(n, sign(mail(n), "hsha256"), [("pass", "")])
    n = "6376-3.6.1-h=sha1-refuses-rsa-sha256"
    case(n, sign(mail(n), "hsha1"), [("permerror", "inappropriate hash algorithm")],
         "dkimpy does not read the key's h= tag; RFC 6376 6.1.2 step 5 says PERMFAIL (inappropriate hash algorithm)")
    n = "6376-3.6.1-s=email"
    case(n, sign(mail(n), "semail"), [("pass", "")])
    n = "6376-3.6.1-s=wildcard"
    case(n, sign(mail(n), "sstar"), [("pass", "")])
    n = "6376-3.6.1-s=other-service"
    case(n, sign(mail(n), "sother"), [("permerror", "inappropriate service")],
         "dkimpy swallows its own 'unknown service type' error and then raises with the message None; "
         "the key is not for email (RFC 6376 3.6.1), a permanent error in RFC 8601 words")
    n = "6376-3.6.1-k=rsa"
    case(n, sign(mail(n), "krsa"), [("pass", "")])
    n = "6376-3.6.1-k-default-rsa"
    case(n, sign(mail(n), "rsa"), [("pass", "")])
    n = "8463-3-k=ed25519"
    case(n, sign(mail(n), "ed"), [("pass", "")])
    n = "6376-6.1.2-k=ed25519-refuses-rsa-sha256"
    case(n, sign(mail(n), "kmismatch", alg=b"rsa-sha256"), [("permerror", "inappropriate key algorithm")],
         "dkimpy tries the ed25519 key on the RSA signature and PyNaCl raises; "
         "RFC 6376 6.1.2 step 7: PERMFAIL (inappropriate key algorithm)")
    n = "6376-6.1.2-p=-revoked"
    case(n, sign(mail(n), "revoked"), [("permerror", "key revoked")],
         "dkimpy returns False for a revoked key; RFC 6376 6.1.2 step 6 says PERMFAIL (key revoked), permerror in RFC 8601 words")
    n = "6376-6.1.2-no-key-record"
    case(n, sign(mail(n), "absent"), [("permerror", "NXDOMAIN")],
         "dkimpy returns False for a missing key; RFC 6376 6.1.2 step 3 says PERMFAIL (no key for signature)")

    # i= (RFC 6376 3.5).
    n = "6376-3.5-i=-subdomain-of-d"
    case(n, sign(mail(n), "rsa", identity=b"alice@sub.a.example.test"), [("pass", "")])
    n = "6376-3.5-i=-lookalike-not-subdomain"
    case(n, sign(mail(n), "rsa", identity=b"alice@xa.example.test"), [("permerror", "domain mismatch")])
    n = "6376-3.5-i=-domain-case-insensitive"
    case(n, sign_tags(mail(n), "rsa", identity=b"alice@Sub.A.Example.TEST"), [("pass", "")],
         "domain names compare case-insensitively; go-msgauth v0.7.0 compares i= with d= case-sensitively and says permerror (domain mismatch)")

    # l= (RFC 6376 3.5, 3.7, 6.1.3).
    n = "6376-3.5-l=-equal-body"
    case(n, sign(mail(n), "rsa", length=True), [("policy", "body length")],
         "dkimpy accepts l=; mailscope refuses any l= by local policy (RFC 8601 2.7.1 policy), which the RFC allows (RFC 6376 8.2)")
    n = "6376-3.5-l=-equal-body-simple"
    case(n, sign(mail(n), "rsa", canon=(b"relaxed", b"simple"), length=True), [("policy", "body length")],
         "dkimpy accepts l=; mailscope refuses it by local policy")
    n = "6376-8.2-l=-text-appended"
    case(n, sign(mail(n), "rsa", length=True) + b"Appended by anyone: unsigned text.\r\n", [("policy", "body length")],
         "dkimpy passes the signature over the appended text; RFC 6376 8.2 is why mailscope refuses l= by local policy")
    n = "6376-3.5-l=0"
    case(n, sign_tags(mail(n), "rsa", l=b"0"), [("policy", "body length")],
         "dkimpy accepts l=0, a body not signed at all; mailscope refuses it by local policy")
    n = "6376-3.7-l=-larger-than-body-truncated"
    full = sign(mail(n), "rsa", length=True)
    case(n, replace(full, b"-- \r\nAlice\r\n", b""), [("fail", "larger than the body")])
    n = "6376-6.1.3-l=-larger-than-body"
    ln = canon_body_len(mail(n), b"relaxed")
    case(n, sign_tags(mail(n), "rsa", l=str(ln + 100).encode()), [("fail", "larger than the body")],
         "dkimpy hashes body[:l], all of a shorter body, and passes; RFC 6376 3.7 and 6.1.3: an l= larger than the body fails")
    n = "6376-6.1.3-l=-one-more-than-body"
    ln = canon_body_len(mail(n), b"relaxed")
    case(n, sign_tags(mail(n), "rsa", l=str(ln + 1).encode()), [("fail", "larger than the body")],
         "dkimpy passes it; an l= larger than the body fails, by one octet too")
    n = "6376-6.1.3-l=-one-more-than-body-simple"
    ln = canon_body_len(mail(n), b"simple")
    case(n, sign_tags(mail(n), "rsa", canon=b"relaxed/simple", l=str(ln + 1).encode()), [("fail", "larger than the body")],
         "dkimpy passes it; an l= larger than the simple-canonicalized body fails")
    n = "6376-3.5-l=-not-a-number"
    case(n, sign_tags(mail(n), "rsa", l=b"12x"), [("permerror", "malformed body length")])

    # Canonicalization (RFC 6376 3.4).
    for c in [(b"simple", b"simple"), (b"simple", b"relaxed"), (b"relaxed", b"simple"), (b"relaxed", b"relaxed")]:
        n = "6376-3.4-c=" + b"-".join(c).decode()
        case(n, sign(mail(n), "rsa", canon=c), [("pass", "")])
    n = "6376-3.4.3-simple-body-trailing-empty-lines-added"
    case(n, sign(mail(n), "rsa", canon=(b"simple", b"simple")) + b"\r\n\r\n\r\n", [("pass", "")])
    n = "6376-3.4.3-simple-body-trailing-empty-lines-removed"
    m = mail(n, body=body + b"\r\n\r\n\r\n")
    case(n, replace(sign(m, "rsa", canon=(b"simple", b"simple")), b"Alice\r\n\r\n\r\n\r\n", b"Alice\r\n"), [("pass", "")])
    n = "6376-3.4.3-simple-body-trailing-space-added"
    case(n, replace(sign(mail(n), "rsa", canon=(b"simple", b"simple")), b"Hello Bob.\r\n", b"Hello Bob. \r\n"),
         [("fail", "body hash did not verify")])
    n = "6376-3.4.4-relaxed-body-whitespace-changed"
    s = sign(mail(n), "rsa", canon=(b"relaxed", b"relaxed"))
    s = replace(s, b"This  line has\tinner", b"This \t line  has inner")
    s = replace(s, b"Hello Bob.\r\n", b"Hello Bob.\t \r\n")
    case(n, s, [("pass", "")])
    n = "6376-3.4.4-relaxed-body-trailing-empty-lines-added"
    case(n, sign(mail(n), "rsa", canon=(b"relaxed", b"relaxed")) + b"\r\n \r\n\t\r\n", [("pass", "")])
    n = "6376-3.4.4-relaxed-body-space-inserted-in-word"
    case(n, replace(sign(mail(n), "rsa", canon=(b"relaxed", b"relaxed")), b"Hello Bob.", b"Hel lo Bob."),
         [("fail", "body hash did not verify")])
    n = "6376-3.4.3-simple-empty-body"
    case(n, sign(mail(n, body=b""), "rsa", canon=(b"simple", b"simple")), [("pass", "")])
    n = "6376-3.4.4-relaxed-empty-body"
    case(n, sign(mail(n, body=b""), "rsa", canon=(b"relaxed", b"relaxed")), [("pass", "")])
    n = "6376-3.4.2-relaxed-header-refolded"
    s = sign(mail(n), "rsa", canon=(b"relaxed", b"simple"))
    s = replace(s, b"Subject: Corpus case " + n.encode(), b"SUBJECT:   Corpus\r\n\tcase  " + n.encode() + b"  ")
    case(n, s, [("pass", "")])
    n = "6376-3.4.2-relaxed-header-folded-when-signed"
    s = sign(mail(n, subject=b"Corpus case\r\n  folded when signed"), "rsa", canon=(b"relaxed", b"relaxed"))
    s = replace(s, b"Corpus case\r\n  folded when signed", b"Corpus case folded when signed")
    case(n, s, [("pass", "")])
    n = "6376-3.4.1-simple-header-refolded"
    s = sign(mail(n), "rsa", canon=(b"simple", b"simple"))
    case(n, replace(s, b"Subject: Corpus case ", b"Subject: Corpus case\r\n "), [("fail", "signature did not verify")])
    n = "6376-3.4.1-simple-header-name-case-changed"
    s = sign(mail(n), "rsa", canon=(b"simple", b"simple"))
    case(n, replace(s, b"\r\nSubject: ", b"\r\nSUBJECT: "), [("fail", "signature did not verify")])

    # Changes after signing (RFC 6376 6.1.3).
    n = "6376-6.1.3-body-changed"
    case(n, replace(sign(mail(n), "rsa"), b"Hello Bob.", b"Hello Eve."), [("fail", "body hash did not verify")])
    n = "6376-6.1.3-signed-header-changed"
    case(n, replace(sign(mail(n), "rsa"), b"To: Bob", b"To: Eve"), [("fail", "signature did not verify")])

    # Header fields that occur more than once, or not at all (RFC 6376 5.4, 5.4.2).
    trace = b"X-Trace: hop 2\r\nX-Trace: hop 1\r\n"
    hdrs = HEADERS + [b"x-trace", b"x-trace"]
    n = "6376-5.4.2-repeated-header-signed-twice"
    case(n, sign(mail(n, extra=trace), "rsa", headers=hdrs), [("pass", "")])
    n = "6376-5.4.2-repeated-header-reordered"
    s = sign(mail(n, extra=trace), "rsa", headers=hdrs)
    case(n, replace(s, trace, b"X-Trace: hop 1\r\nX-Trace: hop 2\r\n"), [("fail", "signature did not verify")])
    n = "6376-5.4.2-bottom-instance-signed-top-added"
    s = sign(mail(n, extra=trace), "rsa", headers=HEADERS + [b"x-trace"])
    case(n, b"X-Trace: hop 3, added\r\n" + s, [("pass", "")])
    n = "6376-5.4.2-bottom-instance-signed-bottom-changed"
    s = sign(mail(n, extra=trace), "rsa", headers=HEADERS + [b"x-trace"])
    case(n, replace(s, b"X-Trace: hop 1", b"X-Trace: hop 9"), [("fail", "signature did not verify")])
    n = "6376-5.4-h=-absent-header-oversigned"
    case(n, sign(mail(n), "rsa", headers=HEADERS + [b"reply-to"]), [("pass", "")])
    n = "6376-5.4-h=-absent-header-oversigned-then-added"
    s = sign(mail(n), "rsa", headers=HEADERS + [b"reply-to"])
    case(n, b"Reply-To: Mallory <mallory@example.test>\r\n" + s, [("fail", "signature did not verify")])
    n = "6376-5.4.2-unsigned-extra-from"
    s = sign(mail(n), "rsa")
    case(n, b"From: Mallory <mallory@example.test>\r\n" + s, [("pass", "")],
         "dkimpy signs and verifies one From more than h= lists (its bug #644046), so it fails; "
         "RFC 6376 5.4.2 picks the bottom-most From, which is signed: pass (8.15 is why signers oversign From)")
    n = "6376-5.4.2-oversigned-from-extra-from"
    s = sign(mail(n), "rsa", headers=HEADERS + [b"from"])
    case(n, b"From: Mallory <mallory@example.test>\r\n" + s, [("fail", "signature did not verify")])

    # Several signatures, each judged on its own (RFC 6376 4.2).
    n = "6376-4.2-two-signatures-one-refused-by-t=s"
    s = sign(mail(n), "ts", identity=b"alice@sub.a.example.test")
    s = sign(s, "ed")
    case(n, s, [("pass", ""), ("permerror", "t=s")], "dkimpy does not read the key's t= flags")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def dkimpy_verdicts(raw):
    """What dkimpy says of each signature of raw, top first."""
    out = []
    count = len(re.findall(rb"(?im)^dkim-signature:", raw.split(b"\r\n\r\n", 1)[0]))
    for i in range(count):
        cap = Capture()
        log = logging.getLogger("dkimpy%d" % len(out))
        log.handlers = [cap]
        log.propagate = False
        try:
            ok = dkim.DKIM(raw, logger=log).verify(idx=i, dnsfunc=lookup)
            out.append(("pass" if ok else "fail", "; ".join(cap.messages)))
        except dkim.DKIMException as e:
            # dkimpy raises for a body hash that does not match: a
            # signature tested that did not verify, "fail".
            out.append(("fail" if str(e).startswith("body hash mismatch") else "permerror", str(e)))
        except Exception as e:  # dkimpy fails outside its own exceptions
            out.append(("permerror", "%s: %s" % (type(e).__name__, e)))
    return out


def split_txt(v):
    parts = [v[i:i + 255] for i in range(0, len(v), 255)] or [""]
    return " ".join('"%s"' % p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)


def main():
    build()
    for f in os.listdir(HERE):
        if f.endswith(".eml"):
            os.remove(os.path.join(HERE, f))
    with open(os.path.join(HERE, "zone.txt"), "w") as z:
        z.write("; Keys of the differential DKIM corpus; made by gen.py.\n$TTL 300\n")
        for sel, txt in KEYS.items():
            z.write("%s IN TXT %s\n" % (zone_name(sel), split_txt(txt)))
    index = []
    for c in CASES:
        file = c["name"] + ".eml"
        with open(os.path.join(HERE, file), "wb") as f:
            f.write(c["raw"])
        got = dkimpy_verdicts(c["raw"])
        want = [w for w, _ in c["want"]]
        if [g for g, _ in got] != want and not c["note"]:
            sys.exit("%s: dkimpy says %s, want %s, and no note says why" % (c["name"], got, want))
        index.append({
            "name": c["name"],
            "file": file,
            "want": want,
            "want_reason": [r for _, r in c["want"]],
            "dkimpy": [g for g, _ in got],
            "dkimpy_detail": [d for _, d in got],
            "note": c["note"],
        })
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump({"generator": "gen.py", "signer": "dkimpy " + dkim_version(), "cases": index}, f, indent=1)
        f.write("\n")
    for c in index:
        print("%-55s want %-20s dkimpy %s" % (c["name"], ",".join(c["want"]), ",".join(c["dkimpy"])))


def dkim_version():
    try:
        from importlib.metadata import version
        return version("dkimpy")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()

"""What the Stork client (the Raven tools) does with a node's slice name and GetSSHKeys reply, as
interop spec section 1 describes it, written in Python 3 as this project's own code.

usage: stork_client.py ROOT URL
  reads ROOT/etc/slicename (stripped), calls GetSSHKeys() on URL, takes reply.get(slicename),
  splits it on "\\n", strips each entry and skips blank ones; for every entry it skips the first
  word, takes the base64 blob up to the next space, converts an ssh-rsa blob to a PEM RSA public
  key and checks it with `openssl rsa -pubin -noout`. Any other key type ends the client, as
  does a missing slice name, a fault, a missing or empty entry.
Prints one JSON object: {"ok": true, "slicename": ..., "keys": N, "users": [...]} or
{"ok": false, "error": "..."}.
"""
import base64
import json
import struct
import subprocess
import sys
import xmlrpc.client


def der_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der(tag, body):
    return bytes([tag]) + der_length(len(body)) + body


def der_int(value):
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def ssh_fields(blob):
    fields, i = [], 0
    while i < len(blob):
        (n,) = struct.unpack(">I", blob[i:i + 4])
        fields.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    return fields


def rsa_pem(b64):
    """keyconvert's job: an ssh-rsa blob to a PEM public key (SubjectPublicKeyInfo)."""
    fields = ssh_fields(base64.b64decode(b64, validate=True))
    if not fields or fields[0] != b"ssh-rsa":
        raise ValueError("not an ssh-rsa key: %r" % (fields[0][:40] if fields else b""))
    e, n = (int.from_bytes(f, "big") for f in fields[1:3])
    rsa = der(0x30, der_int(n) + der_int(e))
    algorithm = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = der(0x30, algorithm + der(0x03, b"\x00" + rsa))
    text = base64.encodebytes(spki).decode().replace("\n", "")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def main(root, url):
    try:
        slicename = open(root + "/etc/slicename").read().strip()
    except OSError as err:
        return {"ok": False, "error": "not on a slice: %s" % err}
    if not slicename:
        return {"ok": False, "error": "not on a slice: empty /etc/slicename"}
    try:
        reply = xmlrpc.client.ServerProxy(url).GetSSHKeys()
    except Exception as err:  # noqa: BLE001 - the client ends on any failure
        return {"ok": False, "error": "GetSSHKeys failed: %s" % err}
    entry = reply.get(slicename)
    if not entry:
        return {"ok": False, "error": "no keys for %s" % slicename}
    keys, users = 0, []
    for line in entry.split("\n"):
        line = line.strip()
        if not line:
            continue
        rest = line.split(" ", 1)[1] if " " in line else ""
        blob = rest.split(" ", 1)[0]
        kind = line.split(" ", 1)[0]
        if kind != "ssh-rsa":
            return {"ok": False, "error": "Invalid or missing publickeyfile: cannot convert a %r key" % kind[:40]}
        try:
            pem = rsa_pem(blob)
        except Exception as err:  # noqa: BLE001
            return {"ok": False, "error": "Invalid or missing publickeyfile: %s" % err}
        check = subprocess.run(["openssl", "rsa", "-pubin", "-noout"], input=pem.encode(), capture_output=True)
        if check.returncode != 0:
            return {"ok": False, "error": "openssl rsa -pubin refused the key: %s" % check.stderr.decode()[:200]}
        comment = rest.split(" ", 1)[1] if " " in rest else ""
        str(comment)  # Python 2's str() of a unicode comment is where a non-ASCII one would crash
        if any(ord(c) > 127 for c in line):
            return {"ok": False, "error": "a non-ASCII character in a listed key"}
        users.append(comment.split(" ", 1)[0].split("@", 1)[0])
        keys += 1
    return {"ok": True, "slicename": slicename, "keys": keys, "users": users}


if __name__ == "__main__":
    json.dump(main(sys.argv[1], sys.argv[2]), sys.stdout)

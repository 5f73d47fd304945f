"""A GID reader that behaves as SFA's does (sfa/trust/certificate.py, gid.py, sfa/util/xrn.py,
sfa/planetlab/plxrn.py), written for these tests on pyOpenSSL, the library SFA uses:

- a file is split into PEM certificates: the first is the GID, the rest its parent chain;
- the URN, UUID and e-mail come from the subjectAltName text ("URI:...,  URI:urn:uuid:..."); the
  HRN is derived from the URN; nothing is taken from the subject CN;
- verify_chain(trusted): a certificate signed by a trusted one is verified; otherwise its parent
  must have signed it and carry basicConstraints exactly "CA:TRUE", and the parent is verified in
  turn; for a GID the parent's HRN must be the child's or an authority of it and the parent's type
  must start with "authority"; the trusted root must be an authority of the top GID's HRN.

Usage: python3 sfa_gid.py GIDFILE TRUSTEDFILE [GIDFILE TRUSTEDFILE ...] (the last certificate of
TRUSTEDFILE is the trusted root)
Prints one JSON object per pair: {"urn", "hrn", "uuid", "type", "cn", "pl_slicename", "verified", "error"}.
"""
import json
import re
import sys
import uuid as uuidlib

from cryptography.hazmat.primitives.asymmetric import padding
from OpenSSL import crypto

PEM_END = '-----END CERTIFICATE-----'


class VerifyError(Exception):
    pass


def hrn_escape(part):
    return re.sub(r'([^\\])\.', r'\1\\.', part)


def hrn_split(hrn):
    return [p.replace('--sep--', '\\.') for p in hrn.replace('\\.', '--sep--').split('.')]


def urn_to_hrn(urn):
    """xrn.py: drop the prefix, split on '+', escape dots, ':' between authorities becomes '.'."""
    body = urn.split('IDN+', 1)[1] if 'IDN+' in urn else urn
    parts = body.split('+')
    kind = parts.pop(1)
    if kind == 'authority':
        name = parts.pop()
        if name != 'sa':
            kind = kind + '+' + name
        name = ''
    else:
        name = parts.pop()
    hrn = '.'.join(hrn_escape(p).replace(':', '.') for p in parts if p)
    if name:
        hrn += '.' + hrn_escape(name.split(':')[0])
    return hrn, kind


def hrn_authfor_hrn(parent, child):
    return parent == child or child.startswith(parent + '.')


def pl_slicename(hrn):
    """plxrn.py hrn_to_pl_slicename: login base (last authority) and leaf, cleaned as SFA does."""
    parts = hrn_split(hrn)
    leaf = parts[-1]
    base = parts[-2] if len(parts) > 1 else ''
    base = re.sub('[^a-zA-Z0-9]', '', base.lower())
    name = re.sub('[^a-zA-Z0-9_]', '', leaf.split(':')[0])
    return base + '_' + name


class Gid:
    def __init__(self, text):
        text = text.strip()
        start = text.find('-----BEGIN CERTIFICATE')
        if start < 0:
            raise VerifyError('no certificate')
        text = text[start:]
        first, _, rest = text.partition(PEM_END)
        self.x509 = crypto.load_certificate(crypto.FILETYPE_PEM, (first + PEM_END).encode())
        rest = rest.strip()
        self.parent = Gid(rest) if rest else None
        self.urn = self.uuid = self.email = self.hrn = self.type = None
        data = self.extension('subjectAltName') or ''
        for val in data.split(', '):
            low = val.lower()
            if low.startswith('uri:urn:uuid:'):
                self.uuid = str(uuidlib.UUID(val[4:]))
            elif low.startswith('uri:urn:publicid:idn+'):
                self.urn = val[4:]
            elif low.startswith('email:'):
                self.email = val[6:]
        if self.urn:
            self.hrn, self.type = urn_to_hrn(self.urn)

    def extension(self, name):
        for i in range(self.x509.get_extension_count()):
            ext = self.x509.get_extension(i)
            if ext.get_short_name().decode() == name:
                return str(ext)
        return None

    def is_ca(self):
        return self.extension('basicConstraints') == 'CA:TRUE'

    def signed_by(self, other):
        cert = self.x509.to_cryptography()
        try:
            other.x509.to_cryptography().public_key().verify(
                cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
            return True
        except Exception:
            return False

    def cert_verify_chain(self, trusted):
        for t in trusted:
            if self.signed_by(t) and not t.x509.has_expired():
                return t
        if self.parent is None:
            raise VerifyError('missing parent: %s is signed by no trusted certificate' % self.hrn)
        if not self.signed_by(self.parent):
            raise VerifyError('%s not signed by its parent %s' % (self.hrn, self.parent.hrn))
        if not self.parent.is_ca():
            raise VerifyError('parent %s is not CA:TRUE' % self.parent.hrn)
        return self.parent.cert_verify_chain(trusted)

    def verify_chain(self, trusted):
        root = self.cert_verify_chain(trusted)
        if self.parent is not None:
            if not hrn_authfor_hrn(self.parent.hrn, self.hrn):
                raise VerifyError('parent HRN %s is not an authority of %s' % (self.parent.hrn, self.hrn))
            if not (self.parent.type or '').startswith('authority'):
                raise VerifyError('parent %s is of type %s, not an authority' % (self.parent.hrn, self.parent.type))
            self.parent.verify_chain(trusted)
        else:
            top = Gid(crypto.dump_certificate(crypto.FILETYPE_PEM, root.x509).decode())
            if not hrn_authfor_hrn(top.hrn, self.hrn):
                raise VerifyError('trusted root %s is not an authority of %s' % (top.hrn, self.hrn))
            if not (top.type or '').startswith('authority'):
                raise VerifyError('trusted root %s is not an authority' % top.hrn)


def main(args):
    out = []
    for gid_file, trusted_file in zip(args[0::2], args[1::2]):
        with open(gid_file) as f:
            gid = Gid(f.read())
        with open(trusted_file) as f:
            root = Gid(f.read())
        while root.parent is not None:  # trust the last certificate of that file (its root)
            root = root.parent
        trusted = [root]
        res = {'urn': gid.urn, 'hrn': gid.hrn, 'uuid': gid.uuid, 'type': gid.type,
               'cn': gid.x509.get_subject().CN, 'pl_slicename': pl_slicename(gid.hrn) if gid.hrn else None,
               'verified': False, 'error': None}
        try:
            gid.verify_chain(trusted)
            res['verified'] = True
        except VerifyError as e:
            res['error'] = str(e)
        out.append(res)
    print(json.dumps(out))


if __name__ == '__main__':
    main(sys.argv[1:])

#!/usr/bin/env python3
"""An independent implementation of the insurance platform's envelope, on the pure-Python
`gmssl` package (PyPI, pinned in scripts/test.sh): SM2 (SM3withSM2 with the distinguishing
identifier's Z value), SM3 and SM4 all come from gmssl; the signing string, the canonical JSON
and the SM4 key derivation are written here again from the specification, not shared with the
Rust code. Run by integrations/src/insurance/tests.rs.

    gmssl_check.py open  ENVELOPE_FILE --peer-public B64 --app-id ID --app-secret S [--uid U]
        verifies signData with the peer's public key, decrypts encData; prints
        {"data": ..., "fields": ..., "signString": ...}; exits 1 if the signature fails.
    gmssl_check.py seal  DATA_FILE --private B64 --public B64 --app-id ID --app-secret S
                         --timestamp T [--fields JSON] [--uid U]
        prints the sealed envelope (data may be JSON null for an answer without data).
"""
import argparse
import base64
import json
import sys

from gmssl import func, sm2, sm3
from gmssl.sm4 import SM4_DECRYPT, SM4_ENCRYPT, CryptSM4

STANDARD_UID = "1234567812345678"
UNSIGNED = ("signData", "encData", "extra")


def clean(value):
    """Empty values (null, "", and objects or arrays left empty) take no part."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        kept = [c for c in (clean(v) for v in value) if c is not None]
        return kept or None
    if isinstance(value, dict):
        kept = {k: c for k, c in ((k, clean(v)) for k, v in value.items()) if c is not None}
        return kept or None
    return value


def canonical(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sign_string(fields, app_secret):
    parts = []
    for key in sorted(fields):
        if key in UNSIGNED:
            continue
        value = clean(fields[key])
        if value is None:
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, (dict, list)):
            text = canonical(value)
        else:
            text = json.dumps(value)  # true/false, numbers
        parts.append(f"{key}={text}")
    parts.append(f"key={app_secret}")
    return "&".join(parts)


def sm4_key(app_id, app_secret):
    crypt = CryptSM4()
    crypt.set_key(app_id.encode()[:16], SM4_ENCRYPT)
    return crypt.crypt_ecb(app_secret.encode()).hex().upper()[:16].encode()


def sm4_encrypt(key, plain):
    crypt = CryptSM4()
    crypt.set_key(key, SM4_ENCRYPT)
    return crypt.crypt_ecb(plain).hex().upper()


def sm4_decrypt(key, cipher_hex):
    crypt = CryptSM4()
    crypt.set_key(key, SM4_DECRYPT)
    return crypt.crypt_ecb(bytes.fromhex(cipher_hex))


def public_xy_hex(b64):
    raw = base64.b64decode(b64)
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    assert len(raw) == 64, "public key must be 04||X||Y or X||Y"
    return raw.hex()


def digest(message, uid, xy_hex):
    """e = SM3(Z || M), Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) (GM/T 0003.2)."""
    table = sm2.default_ecc_table
    uid_bytes = uid.encode()
    z_input = (len(uid_bytes) * 8).to_bytes(2, "big") + uid_bytes + bytes.fromhex(table["a"] + table["b"] + table["g"] + xy_hex)
    z = bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(z_input)))
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(z + message)))


def do_open(args):
    envelope = json.load(open(args.file, encoding="utf-8"))
    assert envelope["appId"] == args.app_id, "appId"
    assert envelope["encType"] == "SM4" and envelope["signType"] == "SM2", "encType/signType"
    fields = {k: v for k, v in envelope.items() if k not in ("encData", "signData")}
    data = None
    if envelope.get("encData"):
        data = json.loads(sm4_decrypt(sm4_key(args.app_id, args.app_secret), envelope["encData"]).decode("utf-8"))
        fields["data"] = data
    text = sign_string(fields, args.app_secret)
    xy = public_xy_hex(args.peer_public)
    crypt = sm2.CryptSM2(private_key="", public_key=xy)
    signature = base64.b64decode(envelope["signData"]).hex()
    ok = crypt.verify(signature, digest(text.encode(), args.uid, xy))
    if ok and args.uid == STANDARD_UID:
        # gmssl's own Z (fixed identifier) must agree with ours.
        ok = crypt.verify_with_sm3(signature, text.encode())
    if not ok:
        print(json.dumps({"verified": False, "signString": text}, ensure_ascii=False))
        sys.exit(1)
    fields.pop("data", None)
    print(json.dumps({"verified": True, "data": data, "fields": fields, "signString": text}, ensure_ascii=False))


def do_seal(args):
    data = clean(json.load(open(args.file, encoding="utf-8")))
    fields = json.loads(args.fields) if args.fields else {}
    fields.update({"appId": args.app_id, "encType": "SM4", "signType": "SM2", "timestamp": args.timestamp, "version": "2.0.1"})
    if data is not None:
        fields["data"] = data
    text = sign_string(fields, args.app_secret)
    private_hex = base64.b64decode(args.private).hex()
    xy = public_xy_hex(args.public)
    crypt = sm2.CryptSM2(private_key=private_hex, public_key=xy)
    e = digest(text.encode(), args.uid, xy)
    signature = None
    while signature is None:
        signature = crypt.sign(e, func.random_hex(crypt.para_len))
    fields.pop("data", None)
    if data is not None:
        fields["encData"] = sm4_encrypt(sm4_key(args.app_id, args.app_secret), canonical(data).encode("utf-8"))
    fields["signData"] = base64.b64encode(bytes.fromhex(signature)).decode()
    print(json.dumps(fields, ensure_ascii=False))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("open", "seal"):
        p = sub.add_parser(name)
        p.add_argument("file")
        p.add_argument("--app-id", required=True)
        p.add_argument("--app-secret", required=True)
        p.add_argument("--uid", default=STANDARD_UID)
    sub.choices["open"].add_argument("--peer-public", required=True)
    seal = sub.choices["seal"]
    seal.add_argument("--private", required=True)
    seal.add_argument("--public", required=True)
    seal.add_argument("--timestamp", required=True)
    seal.add_argument("--fields")
    args = parser.parse_args()
    {"open": do_open, "seal": do_seal}[args.mode](args)


if __name__ == "__main__":
    main()

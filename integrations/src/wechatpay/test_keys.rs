//! TEST / SANDBOX ONLY RSA-2048 keypairs, generated with `openssl genrsa 2048` for this repository.
//! They are public: anything signed with them proves nothing. Never configure them for the real
//! WeChat Pay; they exist so tests and the local sandbox need no key generation (which is slow in
//! debug builds) and so a developer can run the sandbox with zero setup.

/// Serial number the sandbox merchant "certificate" is known by (any string; WeChat's are 40 hex).
pub const MERCHANT_SERIAL_NO: &str = "5A1D5A9F00000000000000000000000000000001";

/// The sandbox merchant's private key (PKCS#8, like WeChat's `apiclient_key.pem`). TEST ONLY.
pub const MERCHANT_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCv0gaVQq7TPgQC
/HbE6SlteEXT1ujzw5ZgVBsO9XKouKMxIGakfWCmwD/H0jvEA+UhTGxJk5xCEaXE
IwXYfUtQQTXJB6tpzI8TD+NLM7VFml/yB/JvLx9DAKR/C32sD2FRTcwAD1tUcmRE
+8+0jIlc/jwZ8zA4ZAXozW51vgNZGSF09AcgIySitIKgD4a7afnxZGYUlCYkZIL+
aco+IV7xj0qulEMKhj9ozMi4VO4k5nSwOAP7aCA3oAfyz3IFKUCPr9zKZ0GIIs1Z
4bqyAzTZAeNT/iLhOBnMwH2FGuTGw1DieZbD9yOG4cmnGLvV+m4zqt9xUjRoMwjx
z8etYdIhAgMBAAECggEAMLWqnjqBrcNuIBeqneYM1KewDL7q/fGvXROgBXZppCW3
DHqyBRs5Jil34hez+BuuJJoEHCQ5c7Jo7txXF8GqllrimEW4LxD9iGXr7h8uttBM
iYS7HSN8cTch25Km5/7A0uIPROr8PfqNHfF3e0k+GxXSN8xAjTbkzjjvw833Jn0S
UHOIAnDlaMWLEOlNlMVumRj9zQm/9fsXLiBwYWmGiWE38Yso3Y5E1fFSdZHknbOk
d4UjIOkrcdHuegByAp5gOgMonU/E9RkNU/MiAIHaKm8Kl48Tm0ylQ1KlH3iRdBiM
nRFJBHWk2FnReyWyixNiUFgyIgeddGoqJjmFBYw2UwKBgQDo0ettsV2R3fqnsM05
VYdemHfzk92ywjoLex+fm0GlZ2DRBHcpchVeBZLVVjbAGLyDm1XagW4RG3E9Sgkt
mNikqcH75CF+H6aftiqtlPN+XROEI+PBzbwtpaL+GuYuAEjPXvBoyQFMjvlXGZXl
UJyKwZ/n+lg66KSvVpWPyxS2jwKBgQDBU080LTPnsfswKuNgbKVRS7CaUdoSzgUz
AbgtyFS3mjdeGJU1gK5gpA+yDA5JdoG1pjphnttzZNU4M0Tskw4jcIQhJRhWaa0l
uPiGB65sRENLJqH8talbj74rvSwp4eUuSDLwIPpKeQB/LCS/mSDftLLfWegVF0CY
wMzxUkjETwKBgQCNT6yX3cmvWY5j7doCbLlHXz+fJiav81eL1GVzWKbVoBORiiZR
j58MfFGND1EX82uobcYEY/7Mf12SF7fOZzFHcIn/O45goRFfaxAoX3oTPqcz0xzQ
avFGu3xcwzLmxOFsjHFbCHWzZCxPA4aJsw3w4mkOQlL/HmmmyuTobBjcXQKBgQCS
rd7eO52yIXvv49p4gnY75C2uKIRI2D9hn+BZ/DEqzLtNjWFIIsYrVM8Dy9nbKyrm
46RQBPOD7fFInr2gsUJ86RWXAEoi5jMU9+634oQYaQKVtk4ZKsvASKOFFBa6AEae
gvEC+EJu1rflxVxscoZatQMyK0jHF8lPHJliT4geSQKBgE0GcUtk8La5IQsWz4El
aWmB7fQwN3pdJrNgjBaXpC3YaKlkSad6xv9RwbxzEdjxGPrZEdp5ezELrjV8tKvw
ZgM5Yz40WqoaMLwWF4PcdI/VtiONUn/EbUVeoZMjG0HYn5yGvJzpmIfQEQ3523qd
MYauJMp41hLj3SorrpazhyVk
-----END PRIVATE KEY-----
";

/// The public half of [`MERCHANT_PRIVATE_KEY_PEM`]: what the sandbox verifies requests with.
pub const MERCHANT_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr9IGlUKu0z4EAvx2xOkp
bXhF09bo88OWYFQbDvVyqLijMSBmpH1gpsA/x9I7xAPlIUxsSZOcQhGlxCMF2H1L
UEE1yQeracyPEw/jSzO1RZpf8gfyby8fQwCkfwt9rA9hUU3MAA9bVHJkRPvPtIyJ
XP48GfMwOGQF6M1udb4DWRkhdPQHICMkorSCoA+Gu2n58WRmFJQmJGSC/mnKPiFe
8Y9KrpRDCoY/aMzIuFTuJOZ0sDgD+2ggN6AH8s9yBSlAj6/cymdBiCLNWeG6sgM0
2QHjU/4i4TgZzMB9hRrkxsNQ4nmWw/cjhuHJpxi71fpuM6rfcVI0aDMI8c/HrWHS
IQIDAQAB
-----END PUBLIC KEY-----
";

/// Id of the sandbox platform key, in the format of WeChat Pay's public-key ids.
pub const PLATFORM_SERIAL_NO: &str = "PUB_KEY_ID_0000000000000000SANDBOX0001";

/// The sandbox "WeChat Pay platform" private key: signs responses and notifications. TEST ONLY.
pub const PLATFORM_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDZx2xQeS5c6cpY
ofsVR+wNNOoXbAWHH9yIbvKP13jM4N2It12pzZjgX023hIVH0++l5L7P+Qt1JciK
K0r6YKDrqQ0V/MC5HjgBRQ1wrw3Ro6XAsUOgQ3zSJ6lMyIBad+KXuWadhHY3ymS3
vFGrPfI5qgtlTPSsCNxlvyWkStS+2EQdMaQd02WKh/dte7IE+ARM2cAlwUZ7zAaK
g5zEn2lNfb9x0JCCCAlRK3gOVgcCN4M/uzwqRikiWDAVZDEqapr6v2xq1n+MDEA2
5nY2fmF3MJ14k6L3bvA7gQHA5CF4QVs6AM1Ub/itloyyAMZ7K8B/CSD/sY/4Hnlo
WDwmLNiXAgMBAAECggEALF5cyuhlcbiP6Q7XQLaueOJW7v6rAaSUIZe5A2U6z0Lg
34G8K2QfyVahVspA/SlIodvApE5w7yULflrjo68cGecPK3ObMBvf/SI8YsDHZ/aX
RnLW/EfDnm1GKMaQn93c5Fx5c44RJ7ysWGKdoO2189mZCMJs9r+3Z2NSH+6++UJm
E9xo/MJDuixPqAHFVyV85MaUaod2LyzlVduKEGhdRkPSS6I//o2buPDf+gmPbkMT
dy/J0jEC8J2DdgwA8yIx43xNsZPzikfSykOHYyHWpD971yFSkVI7g78omPAHLODz
aF/XRCLtHvYhcFkTMdRQnLUj574zXMjGsxTqtmv/QQKBgQD1558ucqtnq6sG5R9L
UT4babrSg5OLtB62cH965iRxR8GmH+vFsJJcx2F0+plph0+0f3+18ccbo2/NKTWO
8doDco0XpfPfhXBKY5MYVf2cVlCXyckc4NQdU+Prkmgq8H1+uavnoPWYiL99Bbau
rNifF9c7Iv6U9CctK6mVf3GRWwKBgQDiuDVqS7AwP81CW4uKk51NduroZaulLcXE
nyNFYPby1WW7dWRW1/Kjq3Iay8UF8Fm9X/9gwbjH09/fP/DWsfxTUe7RqlFsrPe9
pX7lfsXpq7mFU22KLdPKWpnvhtJ4WoOWYPqPbByiEDlfnatsucfPUofvboc0yNVV
Nno8SpJedQKBgQCDgG0Q4sOk+hnI4yh8F6M197GvuCtkL1upRrn1mDNu3OfDFhj4
rDdpJDqK2yTFWVYXeYNrYjOPJTS5q0r3+YAUDeND/TxQkUR+k4drITkxrLsGoSNK
rTThxiYBqVbJd7g018gFY39TJfX5Pt/1w3tIgPBZsJoiP/rfXhUfXHr4NwKBgAdk
jFFYAHnCStYkGAu/vnxdKVHEpvEu6ej8a3ECtWq7rKKNNGVki0Ps/j6DcHw+Fx8G
t1QXXQgfD4i/FAJcMWciH9B0Zk1N4pIriFTBaoCxGc6QJt0/m01Y4PYfhlNoWCwa
I3FzzAc40jYc9Q8Ji8tl3IrhJsWA2vv5V8kJgXZVAoGAQRG+q8E9ScJAp6W9MfxI
EAUb6yHpO7E3EfHwMFOM5/zLg5U6UdHDKFXEyrS4F2n6q2x9eIr9HMgVeiLkQUGI
SLFeXgQMh0cdKdmeC0VRmLtPxWtSS316dEeN9jNN8FB+ptaXjwW77sg8qzvnDWf2
RI1Iuye/1uvwfcDJRNqeJX4=
-----END PRIVATE KEY-----
";

/// The public half of [`PLATFORM_PRIVATE_KEY_PEM`]: the client's `platform_public_keys` entry.
pub const PLATFORM_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2cdsUHkuXOnKWKH7FUfs
DTTqF2wFhx/ciG7yj9d4zODdiLddqc2Y4F9Nt4SFR9PvpeS+z/kLdSXIiitK+mCg
66kNFfzAuR44AUUNcK8N0aOlwLFDoEN80iepTMiAWnfil7lmnYR2N8pkt7xRqz3y
OaoLZUz0rAjcZb8lpErUvthEHTGkHdNliof3bXuyBPgETNnAJcFGe8wGioOcxJ9p
TX2/cdCQgggJUSt4DlYHAjeDP7s8KkYpIlgwFWQxKmqa+r9satZ/jAxANuZ2Nn5h
dzCdeJOi927wO4EBwOQheEFbOgDNVG/4rZaMsgDGeyvAfwkg/7GP+B55aFg8JizY
lwIDAQAB
-----END PUBLIC KEY-----
";

/// A 32-byte APIv3 key for the sandbox. TEST ONLY.
pub const APIV3_KEY: &str = "sandboxApiV3Key0123456789abcdefX";

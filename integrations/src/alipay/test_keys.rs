//! TEST / SANDBOX ONLY RSA-2048 keypairs for Alipay, generated with `openssl genpkey -algorithm RSA
//! -pkeyopt rsa_keygen_bits:2048` for this repository. They are public: anything signed with them
//! proves nothing. Never configure them for the real Alipay; they exist so tests and the local
//! sandbox need no key generation (slow in debug builds) and a developer can run the sandbox with
//! zero setup.

/// The sandbox app's private key ("应用私钥", PKCS#8). TEST ONLY.
pub const APP_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDxhP0Tc2LRzEzV
92wFxMTAcwwwUZsNI/kAXCYpRjfz37UfdcfdxeYwAlRSPEmhxKV8Ilc2VfhjNyt0
guiOdzuBGgov4V6YS69fF5zBKx71oJDH9kMfirvufZMdYx59amxEfo11d+4hUDt/
HlGW1Bw1PAAXjvVuEzdUhvxt/5Ci7gKZ/29Xz6MezsZWLnW3ma2xNS8q/4IWGrO2
x8C3wJRc73i6RAQ+yMBmgMJ67WJcg0JV5h/TY/8ZdezOr5NKQdPJuqCGj7WMU1t8
VccaumHq0aZAZUQMpcwB3tGQiS0NJcqvWu8oIv+2XnbradtyEtmRqWK/swirYNGG
UdoXLbqjAgMBAAECggEAJI81gfq+9DQhU2hLLUpeYCVqLGxF9MTDvga07h2Hfb6Y
28TH9u2sjQrlObePi9HJHRPTsNFtspMY3F+ulVY+JypKbXoHiDU4vEPGQkVlP9hI
4kQIYB9vmEfg+5tT87cm4W1ou2XmoZtUDkeIITVFedd1yhslUr7M6touHvaHLepf
KZt7Yfpg6fTN0dJjYHhYtOSXR/yS48eN/jmjxzanZEOWoO42ZbjYa0B1CpfnLHg1
d7GWH1KajpjCDKOnrQ+By9s1s3GWYRDk4c/12zcNCo+gEvjqwIZxoaoDQmE+HREP
xQUmuOVxbWvCnD+Lmk9825zVhnbPSvCQNwsRnxS4gQKBgQD5pSCJCPNihNKztGlY
LDuwOn3gCN7snI1rrQlqiL7YLHNMm0JoUoqXBmxMbaOLIZ9Ssw6P4dQmWmZxMkLF
12jjC/zhZOBTZtLgIf3UFiHNFs8oPXvR+PMdcwENJRXu0Lysj18aKjMfRdnaZO8l
r42p/uz3qj0RLD/bRgAnI9YZIwKBgQD3qujPH4bnk/doZ61emlQQPmN9T0OktCGJ
sSn0+rowB+ThKBtQwQ038JeLMqsrvsVH+4hvfvfiG8HiDBduU0UlJF49giMmXWoi
zBV1PTcEtBjtI4RV0mFNIMCBlk/+UlCOLoOZe+nbE1f7CVVPLNkZjw3HQ9mOHWU9
BOU8WKGwgQKBgDH3L9zdksEMLpPTLyZ7q/Koslrty5h1+QQtHO5asj/YHbeed5sj
siNqILDnXM1TDG1j8y0vGOQYQdq0IZMxewe+dX2zUAbBVMGRbBlP2LIQt6OpMqgi
+J3TT8mOu6YR10F+bJ1zBspik6jXfNoBGgyFPm6Pfyt5vMopZ4xt6sMbAoGACP5/
7eWrNIW/Gl+JgEICg4SAgHB8eGLCRQnWCDuCv3PJ8BNQyqH4JOvr1PZGGRSYfYC4
97OYtPFlHRxrTWpgvHSRp5IuTJpf3Fuk+9j5QoZ30UTU7XjyZ6ak1w/qX8YFfuRZ
ix1g5L/TFh7EpldumusDCRWBtROENa8T1Bkz5gECgYAditntb0PxAuB+6EZ883XK
gUHantidmLqnjNcZnvhqj2d5pfttsj8uHLIDZIwaef8bjuHvguTcnGV/dFqE0sDM
dOhXJU66/xtggigH5MbsOVTjBqAIiVSF9PgYt5ykt5zKeSiF57l2T0xXq1DWBw1R
RL4QVXSpvLe1s7hUqL+y+g==
-----END PRIVATE KEY-----
";

/// The public half of [`APP_PRIVATE_KEY_PEM`] ("应用公钥"): what the sandbox verifies requests with.
pub const APP_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8YT9E3Ni0cxM1fdsBcTE
wHMMMFGbDSP5AFwmKUY389+1H3XH3cXmMAJUUjxJocSlfCJXNlX4YzcrdILojnc7
gRoKL+FemEuvXxecwSse9aCQx/ZDH4q77n2THWMefWpsRH6NdXfuIVA7fx5RltQc
NTwAF471bhM3VIb8bf+Qou4Cmf9vV8+jHs7GVi51t5mtsTUvKv+CFhqztsfAt8CU
XO94ukQEPsjAZoDCeu1iXINCVeYf02P/GXXszq+TSkHTybqgho+1jFNbfFXHGrph
6tGmQGVEDKXMAd7RkIktDSXKr1rvKCL/tl5262nbchLZkaliv7MIq2DRhlHaFy26
owIDAQAB
-----END PUBLIC KEY-----
";

/// The sandbox's own private key: it signs answers and notifications as Alipay would. TEST ONLY.
pub const ALIPAY_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCqLt4TkY3YRQ7T
vlGdnIQzxxv2AmXE4bChVCldCSy+uPbGEi9CgdMnrUK1echsp6XheVt9HLg0/Oyo
2CXfJuxmM93QacDj2HF2dv65vbG2FA/4bUUsansSdOkKQGTPhVa3+xgp+24px4zf
Nan1rGuYZFEG2QQBrmC4QL+ojiSB+fnyvmjBTBgPnmS7a+0G2YXmwRIjazzou4me
ph53ZM+fG0E2vFX5aCdlImeL8xa2l+lGBzsfwheCixaDXUY4jTMfScUaNMdC+tyh
LlNZc3TgopTf+4pjc5KWT+y1jWGdCOCGO9lElBnorzJOYWUiFNEeCpUMKNPkvVh2
ZrVOeNiTAgMBAAECggEAD1DMd6Jfy5jbbr7wBWkylJ5Uq90nX4KYLMywNElBF6D5
xHWafzfD0wxKtp5RJUYpLZOIYkgVY99nRQK+1chg+gms6ra5v0eZXnnzDrA9sA86
KLdcxFSI4u5Wkq+c4vgzB7e3Qv/3uBbXXLctpohv3nUYva8GJ0iUN8DL/tVb/75j
vWGdeb11a2jIPgaWJUoo/ckX13anG86gLO1WMmqzJy3bQ6GZXiEobJ3R/z+2I2HX
IuQYF1mXD/GG8evqF4h3a4LnOUuPNR4OUOszx77kiFr5VmArpmZogu543uuzANpn
ExZO7pV6wfqhXaM1k5eH3+TaCM3H3IEidfYGr8TPkQKBgQDlb3UH+vVv2poRvBTd
HrgzWpBHLjiJCwsnUUTIDPF7PU0v12APtoJMZDdBs5TCsRJEYMPMH/Dbz1su+ntx
NH63qgWzEthym1v2yNd03cabcbL6HuvQUMWIN9fMEuuIbisgqWqHak6JmTo0EkUb
aC/kf6c2D2dOHGL/T8gg40P+/wKBgQC94ybgrCsdiQoRmFk5lJtG6uVI+v4ohHX2
VMe5Nxt/W5kCHcg4uxsLoGBQP5jdOCH2/Dbj9IvEnj2U6peF3rRVQ1YufleIzDME
yypOQIdsLF/y5MLmUiJ/rT/MBdSMVUL41NumMTyQa7JPCt1isUCH8fQr9WKcg6TJ
3klOHMC6bQKBgCcryUpMgVzQcJ94ggNifEZgPuO4M3TKSuQyjtCszQmiZKw3VDI6
kbJjJb/03gADZUABWUxfY6rTkxjJMQwZz0yiHYj+PbALcD8I+Sf9uSvO1KS5ZL9T
GvZvuksgK9BGJtzTr9lgv/nkDDjZqazNM+gKF002ggem9wvp3hwnUPOXAoGBALf/
M9zg96ZW8/q4tTymUxAU7Lga/cwlDmjzHdTLIUn3Z/w0/555L2vEq48XEPjLO54o
JsgcXpLXArUZ3FlLw1IbPZcvtYJI2+b5NrU8sfyPwymJoZGsZOFy7y6zN5IDzDFx
kKUpcJZAxTbyQDMxrmYMfZ1a2YLvzO4PBtk540bBAoGBAJXY1DpvHMtYR08wTZyV
zNPpf8ndcpxwytX7Zrxjg4YVmUQSTzx6okStnkRmFKsjMAvS93EhpezO62Lfz0Kn
zAFOm845Dz/vwKKDd0aKHS/9iXImwijUwgvcabzeyfwYvdJp9fal5XKHenfHHQ/N
qlv5GcjVFgWFrblKPMrSdlI5
-----END PRIVATE KEY-----
";

/// The public half of [`ALIPAY_PRIVATE_KEY_PEM`] ("支付宝公钥"): what the client verifies with.
pub const ALIPAY_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqi7eE5GN2EUO075RnZyE
M8cb9gJlxOGwoVQpXQksvrj2xhIvQoHTJ61CtXnIbKel4XlbfRy4NPzsqNgl3ybs
ZjPd0GnA49hxdnb+ub2xthQP+G1FLGp7EnTpCkBkz4VWt/sYKftuKceM3zWp9axr
mGRRBtkEAa5guEC/qI4kgfn58r5owUwYD55ku2vtBtmF5sESI2s86LuJnqYed2TP
nxtBNrxV+WgnZSJni/MWtpfpRgc7H8IXgosWg11GOI0zH0nFGjTHQvrcoS5TWXN0
4KKU3/uKY3OSlk/stY1hnQjghjvZRJQZ6K8yTmFlIhTRHgqVDCjT5L1Ydma1TnjY
kwIDAQAB
-----END PUBLIC KEY-----
";

//! Published TEST credentials for the insurance sandbox: an appId/appSecret and two SM2 key
//! pairs (the hospital's channel key and the sandbox platform's key), generated for this
//! repository. Anyone can read them, so they must never be configured against the real
//! platform; they exist so development and tests sign and verify for real.

/// 32 characters, like the platform's appIds; its first 16 bytes seed the SM4 key.
pub const APP_ID: &str = "1HOSPSANDBOX0APP00000000000000A1";
pub const APP_SECRET: &str = "1HOSPSANDBOX0SECRET0000000000S01";
/// 定点医药机构编码 of the sandbox hospital.
pub const ORG_CODG: &str = "H44010600001";

/// The hospital's (channel) SM2 private key: base64 of the 32-byte scalar.
pub const CHANNEL_PRIVATE_KEY: &str = "QEIZli24J/h2YxGvwOO50wrr9g8YOsgpGPpgbgQtsr8=";
/// Its public key, base64 of `04‖X‖Y`: what the platform verifies requests with.
pub const CHANNEL_PUBLIC_KEY: &str =
    "BNkCBg4B9uZ16MK4SAhONLSbJt82ObjZgkzaADGz+Zo8KQGVDryNLVAwE3I92/z1vgEiEiT4W1LfJlQt2x37CfI=";

/// The sandbox platform's SM2 private key.
pub const PLATFORM_PRIVATE_KEY: &str = "2isjEe1zXXmKf6fNgyKsLhTAQWY5bkzOu0Innn7cCFQ=";
/// What the hospital verifies answers with.
pub const PLATFORM_PUBLIC_KEY: &str =
    "BLRysce1KzaVMcni1LAPqzIwE8ZtvQcvBibdOYV6IvWvBogAMC5fuxJez9fXO9Mbm9zO74bQJASpRYvFgVRc5SE=";

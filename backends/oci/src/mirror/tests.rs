//! Mirror settings.

use super::*;
use crate::settings::Settings;

#[test]
fn upstream_settings_are_checked_and_the_password_is_never_shown() {
    let parse =
        |t: &str| -> Settings { everlock_host::parse_settings(&t.parse().unwrap()).unwrap() };
    let ok = parse(
        "upstream = \"https://registry.example.com\"\nupstream-username = \"u\"\nupstream-password = \"hunter2\"",
    );
    ok.validate().unwrap();
    assert!(!format!("{ok:?}").contains("hunter2"));
    for bad in [
        "upstream = \"ftp://x\"",
        "upstream = \"https://x/v2/\"",
        "upstream = \"https://u:p@x\"",
        "upstream = \"https://x?a=b\"",
        "upstream = \"https://x\"\nupstream-password = \"p\"",
    ] {
        assert!(parse(bad).validate().is_err(), "{bad}");
    }
    assert_eq!(
        password_env("my-mirror"),
        "EVERLOCK_UPSTREAM_PASSWORD_MY_MIRROR"
    );
}

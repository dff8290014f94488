//! Token settings.

#[test]
fn auth_is_basic_or_token() {
    let parse = |t: &str| -> Result<crate::settings::Settings, _> {
        everlock_host::parse_settings(&t.parse().unwrap())
    };
    assert_eq!(parse("").unwrap().auth, super::AuthMode::Basic);
    assert_eq!(
        parse("auth = \"token\"").unwrap().auth,
        super::AuthMode::Token
    );
    assert!(parse("auth = \"oauth\"").is_err());
}

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

/// Anyone may ask `/v2/token` for an anonymous token, so the sessions behind tokens must stay
/// bounded: past the cap, the session expiring first goes and the newest stays.
#[test]
fn sessions_stay_bounded_and_the_earliest_expiry_goes_first() {
    use everlock_host::auth::Principal;
    let tokens = super::Tokens::default();
    let far = super::now_secs() + 10_000;
    for i in 0..super::MAX_SESSIONS + 100 {
        // The first sessions expire first; `i` keeps every expiry distinct.
        tokens.open_session(format!("jti-{i}"), Principal::anon(), far + i as u64);
    }
    let live = tokens
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    assert_eq!(live, super::MAX_SESSIONS);
    assert!(
        tokens.session("jti-0").is_none(),
        "the earliest expiry was evicted"
    );
    let newest = format!("jti-{}", super::MAX_SESSIONS + 99);
    assert!(
        tokens.session(&newest).is_some(),
        "the newest session stays"
    );
}

//! The backend's settings: strict parsing, the shipped example, and the default instance.

#[test]
fn settings_are_strict_and_the_example_parses() {
    let example: everlock_host::toml::Table = crate::settings::EXAMPLE_SETTINGS.parse().unwrap();
    assert!(crate::check(&example).is_ok());
    for bad in [
        "nope = 1",
        "upload-expiry-secs = 0",
        "max-manifest-bytes = 10",
    ] {
        let t: everlock_host::toml::Table = bad.parse().unwrap();
        assert!(crate::check(&t).is_err(), "{bad}");
    }
    let d = crate::default_instances();
    assert_eq!(
        (d[0].name, d[0].prefix, d[0].store),
        ("default", "/v2", "everlock-oci-local")
    );
}

//! Every backend crate the binary links registers its kind. Integration tests are separate
//! crates, so this one links the backends the same way `main.rs` does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[path = "../src/linked.rs"]
mod linked;

#[test]
fn expected_kinds_are_registered() {
    let registry = everlock_host::Registry::collect().unwrap();
    assert_eq!(
        registry.kinds().collect::<Vec<_>>(),
        linked::expected_kinds()
    );
}

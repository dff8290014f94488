//! One ACME order for one name, start to finish, with `instant-acme`: answer the challenge
//! (HTTP-01 through the plain-HTTP frontend, TLS-ALPN-01 through the HTTPS frontend), wait for
//! the order to become ready, finalize with a CSR for a fresh key, download the chain.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::AcmeError;
use crate::config::AcmeChallenge;
use crate::tls::TlsState;

/// How long the CA gets to validate a challenge and issue the certificate.
const ORDER_RETRY: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

/// A certificate just issued: the chain (leaf first) and its key, both PEM.
#[derive(Debug, Clone)]
pub(super) struct Issued {
    /// The chain as the CA returned it.
    pub(super) chain_pem: String,
    /// The new key (PKCS#8).
    pub(super) key_pem: String,
}

/// Removes the challenge answers when the order ends, however it ends.
struct Cleanup<'a> {
    tls: &'a TlsState,
    tokens: Vec<String>,
    names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.tls.set_http_challenge(t, None);
        }
        for n in &self.names {
            self.tls.set_alpn_challenge(n, None);
        }
    }
}

/// Orders a certificate for `name`.
pub(super) async fn obtain(
    account: &Account,
    name: &str,
    challenge: AcmeChallenge,
    tls: &TlsState,
) -> Result<Issued, AcmeError> {
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut cleanup = Cleanup {
        tls,
        tokens: Vec::new(),
        names: Vec::new(),
    };
    let wanted = match challenge {
        AcmeChallenge::Http01 => ChallengeType::Http01,
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(AcmeError::Order(format!("authorization is {other:?}"))),
        }
        let identifier = authz.identifier().to_string();
        let mut ch = authz
            .challenge(wanted.clone())
            .ok_or_else(|| AcmeError::Order(format!("the CA offers no {wanted:?} challenge")))?;
        let key_auth = ch.key_authorization();
        match challenge {
            AcmeChallenge::Http01 => {
                tls.set_http_challenge(&ch.token, Some(key_auth.as_str().to_owned()));
                cleanup.tokens.push(ch.token.clone());
            }
            AcmeChallenge::TlsAlpn01 => {
                let cert = alpn_certificate(tls, &identifier, key_auth.digest().as_ref())?;
                tls.set_alpn_challenge(&identifier, Some(Arc::new(cert)));
                cleanup.names.push(identifier);
            }
        }
        ch.set_ready().await?;
    }
    let status = order.poll_ready(&ORDER_RETRY).await?;
    if status != OrderStatus::Ready {
        let detail = order
            .state()
            .error
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        return Err(AcmeError::Order(format!(
            "order is {status:?} instead of ready {detail}"
        )));
    }
    drop(cleanup);
    let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Key(e.to_string()))?;
    let csr = rcgen::CertificateParams::new(vec![name.to_owned()])
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| AcmeError::Key(e.to_string()))?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&ORDER_RETRY).await?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// The self-signed TLS-ALPN-01 validation certificate for `name` (RFC 8737 §3): the name as
/// its only SAN and the critical acmeIdentifier extension holding the SHA-256 digest of the
/// key authorization.
fn alpn_certificate(
    tls: &TlsState,
    name: &str,
    digest: &[u8],
) -> Result<rustls::sign::CertifiedKey, AcmeError> {
    let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::Key(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| AcmeError::Key(e.to_string()))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| AcmeError::Key(e.to_string()))?;
    // Built directly: `CertifiedKey::keys_match` parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension that validators require.
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = tls
        .provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Key(e.to_string()))?;
    Ok(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    ))
}

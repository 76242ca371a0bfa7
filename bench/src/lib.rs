//! What the benchmark's programs share: the smallest keep-alive HTTP/1.1 server, for the
//! stand-ins of the services around Envoy (an ext_authz authorizer, an IdP), so that their own
//! cost stays out of Envoy's figures.

pub mod http;

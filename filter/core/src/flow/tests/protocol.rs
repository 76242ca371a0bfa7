//! The call-out protocol as a host carries it out: background fetches from `tick`, a call the
//! host could not make resumed as failed, continuations that name their endpoint. The host
//! (the Wasm adapter) only relays; the order of the steps is tested here.

use super::*;
use crate::env::Note;
use crate::provider::{Fetch, Loaded, ProviderError};

/// One worker of an Envoy: its own providers, the Envoy's shared store passed in.
struct Worker {
    gate: Gate,
    providers: Providers,
    rng: SeededEntropy,
}

impl Worker {
    fn new() -> Self {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        Self {
            providers: Providers::new(&cfg),
            gate: Gate::new(cfg),
            rng: SeededEntropy(7),
        }
    }

    fn tick(&mut self, store: &mut MemoryStore, now_ms: u64) -> Vec<Call> {
        let now = Now::since_epoch(std::time::Duration::from_millis(now_ms));
        let mut env = Env::new(now, &mut self.rng, store, &mut self.providers);
        self.gate.tick(&mut env)
    }

    fn resume(
        &mut self,
        store: &mut MemoryStore,
        now_ms: u64,
        pending: Pending,
        result: CallResult<'_>,
    ) -> (Decision, Vec<Note>) {
        let now = Now::since_epoch(std::time::Duration::from_millis(now_ms));
        let mut env = Env::new(now, &mut self.rng, store, &mut self.providers);
        let d = self.gate.resume(pending, result, &mut env);
        (d, env.notes)
    }

    fn navigate(&mut self, store: &mut MemoryStore) -> Response {
        let req = Request {
            method: "GET",
            authority: "app.example.com",
            path: "/",
            accept: Some(HTML),
            ..Request::default()
        };
        let mut env = Env::new(
            Now::from_secs(NOW),
            &mut self.rng,
            store,
            &mut self.providers,
        );
        reply(self.gate.decide(&req, &mut env))
    }
}

#[test]
fn background_fetches_go_discovery_then_keys_once_per_gateway_and_every_worker_adopts_them() {
    let idp = TestIdp::new();
    let mut store = MemoryStore::default();
    let (mut a, mut b) = (Worker::new(), Worker::new());
    assert_eq!(b.navigate(&mut store).outcome, Outcome::NotReady);
    let calls = a.tick(&mut store, 1_000);
    assert_eq!(calls.len(), 1);
    assert!(b.tick(&mut store, 1_000).is_empty(), "one worker fetches");
    let Some(Call { call, then }) = calls.into_iter().next() else {
        unreachable!()
    };
    assert_eq!(then.endpoint(), "discovery");
    assert_eq!(call.cluster, "outbound|443||dev-123456.okta.com");
    let discovery = crate::provider::tests::discovery_json();
    let (d, notes) = a.resume(
        &mut store,
        1_100,
        then,
        CallResult::ok(discovery.as_bytes()),
    );
    assert_eq!(notes[0].result, Ok(Loaded::Discovery));
    // The keys follow at once.
    let Decision::Call(Call { then, .. }) = d else {
        unreachable!("{d:?}")
    };
    assert_eq!(then.endpoint(), "jwks");
    let jwks = idp.jwks();
    let (d, notes) = a.resume(&mut store, 1_200, then, CallResult::ok(jwks.as_bytes()));
    assert!(matches!(d, Decision::Done));
    assert!(matches!(notes[0].result, Ok(Loaded::Keys { count: 2, .. })));
    assert!(a.tick(&mut store, 2_000).is_empty(), "nothing due");
    // The other worker never fetched, and is ready.
    assert!(b.tick(&mut store, 2_000).is_empty());
    assert_eq!(b.navigate(&mut store).outcome, Outcome::LoginStarted);
}

#[test]
fn a_call_the_host_could_not_make_is_resumed_as_failed_and_backs_off() {
    let mut store = MemoryStore::default();
    let mut w = Worker::new();
    let Some(Call { then, .. }) = w.tick(&mut store, 0).pop() else {
        unreachable!()
    };
    let (d, notes) = w.resume(&mut store, 0, then, CallResult::failed());
    assert!(matches!(d, Decision::Done));
    assert_eq!(
        notes,
        vec![Note {
            issuer: ISSUER.into(),
            fetch: Fetch::Discovery,
            result: Err(ProviderError::Unreachable)
        }]
    );
    assert!(w.tick(&mut store, 500).is_empty(), "backs off");
    assert_eq!(w.tick(&mut store, 1_000).len(), 1, "then tries again");
}

#[test]
fn a_login_whose_token_call_failed_answers_503_and_clears_its_flow() {
    let mut w = world();
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let r = reply(w.resume(Pending::CodeExchange(pending), CallResult::failed(), NOW));
    assert_eq!((r.status, r.outcome.code()), (503, "idp_unreachable"));
    assert_eq!(header(&r, "retry-after"), Some("5"));
    assert!(set_cookies(&r).iter().any(|c| c.contains("_csrf=;")));
}

#[test]
fn a_refresh_whose_call_failed_lets_the_request_go_on_with_its_session() {
    let mut w = refreshing();
    w.login_with_refresh_token();
    let (_, pending) = w.refresh_call(NOW + 3600);
    let f = forward(w.resume(Pending::Refresh(pending), CallResult::failed(), NOW + 3600));
    assert!(matches!(
        f.outcome,
        Outcome::RefreshDeferred(LoginError::IdpUnreachable)
    ));
    assert_eq!(f.plan.value("x-auth-request-user"), Some("00u-alice"));
}

//! The proxy-wasm host calls the filter makes, declared here rather than taken from the SDK:
//! the SDK's helpers panic on a status they do not expect and on names or values that are not
//! UTF-8, and a panic traps the VM (the whole worker then answers 503). These return the raw
//! status as an error and hand bytes over as bytes. Call-outs still go through the SDK's
//! `dispatch_http_call`, whose dispatcher routes the answer back to the calling context.

use std::ptr::{null, null_mut};

/// A proxy-wasm status other than `Ok` (1 = not found, 2 = bad argument, 8 = CAS mismatch, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus(pub u32);

pub const LOG_CRITICAL: u32 = 5;
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
pub const CALL_RESPONSE_HEADERS: u32 = 6;
pub const CALL_RESPONSE_BODY: u32 = 4;
pub const PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_REQUEST: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

fn status(code: u32) -> Result<(), HostStatus> {
    match code {
        OK => Ok(()),
        other => Err(HostStatus(other)),
    }
}

/// Takes ownership of memory the host filled through the SDK's `proxy_on_memory_allocate`
/// (a boxed slice of exactly `size` bytes).
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host returned this pointer from our allocator export for `size` bytes and
    // hands ownership to the module; length and capacity are both `size`.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

pub fn log(level: u32, message: &str) -> Result<(), HostStatus> {
    // SAFETY: pointer and length of a live string.
    status(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
}

pub fn log_level() -> Result<u32, HostStatus> {
    let mut level = 0u32;
    // SAFETY: a valid out-pointer.
    status(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(level)
}

pub fn now_nanos() -> Result<u64, HostStatus> {
    let mut t = 0u64;
    // SAFETY: a valid out-pointer.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// A whole header map, serialized (see `oidc_gate_core::pairs`).
pub fn header_map(map: u32) -> Result<Vec<u8>, HostStatus> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the returned buffer is ours (see `take`).
    status(unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) })?;
    Ok(take(data, size))
}

/// One header's value as bytes; `None` when the map has no such header.
pub fn header_value(map: u32, name: &[u8]) -> Result<Option<Vec<u8>>, HostStatus> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: pointer and length of a live slice; valid out-pointers.
    let code =
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) };
    match code {
        NOT_FOUND => Ok(None),
        other => status(other).map(|()| Some(take(data, size))),
    }
}

pub fn replace_header(map: u32, name: &[u8], value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: pointers and lengths of live slices.
    status(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn remove_header(map: u32, name: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: pointer and length of a live slice.
    status(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
}

pub fn add_header(map: u32, name: &[u8], value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: pointers and lengths of live slices.
    status(unsafe {
        proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

/// Up to `max` bytes of a buffer from its start; empty when the host has none.
pub fn buffer(kind: u32, max: usize) -> Result<Vec<u8>, HostStatus> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the returned buffer is ours.
    match unsafe { proxy_get_buffer_bytes(kind, 0, max, &mut data, &mut size) } {
        NOT_FOUND => Ok(Vec::new()),
        other => status(other).map(|()| take(data, size)),
    }
}

/// A local reply; `headers` serialized (see `oidc_gate_core::pairs::serialize`).
pub fn send_local_response(code: u32, headers: &[u8], body: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: pointers and lengths of live slices; -1: no gRPC status.
    status(unsafe {
        proxy_send_local_response(
            code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// A shared-data entry and its version; `None` when the key does not exist.
pub fn shared_get(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: pointer and length of a live string; valid out-pointers.
    let code =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match code {
        NOT_FOUND => Ok(None),
        other => status(other).map(|()| Some((take(data, size), cas))),
    }
}

/// Writes when `cas` is the current version (0: unconditionally).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus> {
    // SAFETY: pointers and lengths of live slices.
    status(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub fn resume_request() -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    status(unsafe { proxy_continue_stream(STREAM_REQUEST) })
}

pub fn set_tick_period_ms(ms: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// 0 counter, 1 gauge, 2 histogram.
pub fn define_metric(kind: u32, name: &str) -> Result<u32, HostStatus> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live string; a valid out-pointer.
    status(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    status(unsafe { proxy_increment_metric(id, by) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    status(unsafe { proxy_record_metric(id, value) })
}

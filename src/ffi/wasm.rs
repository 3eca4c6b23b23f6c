//! Memory for a WebAssembly host. A host that runs the library as a wasm module (the Go
//! package's cgo-free backend) passes strings in and reads results out through the module's
//! linear memory, so it needs to allocate there. Only compiled for wasm targets; not part of
//! the C header.

use crate::ffi_boundary;
use std::alloc::{alloc, dealloc, Layout};

/// Allocates `size` bytes (8-aligned) in the module's memory for the host; 0 when `size` is 0
/// or the memory is exhausted. Free with `nl_wasm_free(ptr, size)`.
#[no_mangle]
pub extern "C" fn nl_wasm_alloc(size: usize) -> *mut u8 {
    ffi_boundary!(value std::ptr::null_mut(), {
        match Layout::from_size_align(size, 8) {
            Ok(layout) if size > 0 => {
                // SAFETY: the layout has a non-zero size.
                unsafe { alloc(layout) }
            }
            _ => std::ptr::null_mut(),
        }
    })
}

/// Frees what `nl_wasm_alloc(size)` returned (NULL is a no-op).
///
/// # Safety
/// `ptr` must come from `nl_wasm_alloc` with the same `size`, and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn nl_wasm_free(ptr: *mut u8, size: usize) {
    ffi_boundary!(value(), {
        if !ptr.is_null() {
            if let Ok(layout) = Layout::from_size_align(size, 8) {
                // SAFETY: per the contract, allocated by nl_wasm_alloc with this layout.
                unsafe { dealloc(ptr, layout) }
            }
        }
    })
}

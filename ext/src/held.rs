//! Our own reference on a PHP array for as long as we read it.
//!
//! The encoder reads hash tables in place and calls user code in the middle
//! (`jsonSerialize()` through `json_encode`, destructors of objects released
//! along the way). An array reached through a PHP reference has a refcount of
//! 1, owned by the `zend_reference`: user code writing to it changes it in
//! place, and growing it reallocates the very buckets we are reading.
//!
//! PHP's answer, used by its own walkers, is copy-on-write: while a second
//! reference is counted, every write separates (the writer gets a copy) and
//! the table we hold stays exactly as it was. [`HeldArray`] is that second
//! reference: `GC_ADDREF` when it is taken, `zend_array_release` semantics when
//! it is dropped. Dropping the last reference destroys the array, which can
//! run destructors, i.e. more user code, and leave an exception pending: the
//! callers check for one once the walk is over.
//!
//! The GC macros are C inline functions, absent from the bindings; the
//! helpers below do what they do, citing `Zend/zend_types.h` and
//! `Zend/zend_gc.h` (PHP 8.1–8.4, where the layout is the same).

use std::ptr::{addr_of, addr_of_mut};

use ext_php_rs::ffi::{self, zend_array, zend_refcounted};

/// `GC_IMMUTABLE` (zend_types.h): interned/immutable arrays (literals, opcache)
/// are shared read-only, never refcounted and never changed in place.
const GC_IMMUTABLE: u32 = ffi::GC_IMMUTABLE;
/// `GC_NOT_COLLECTABLE` (zend_types.h): cannot be part of a cycle.
const GC_NOT_COLLECTABLE: u32 = 1 << 4;
/// `GC_INFO_MASK` (zend_types.h): the bits holding the GC root-buffer address;
/// non-zero when the value is already a possible root.
const GC_INFO_MASK: u32 = 0xffff_fc00;

/// A counted reference on a PHP array; see the module documentation.
pub struct HeldArray {
    ht: *mut zend_array,
    /// The refcount before ours: if it is the same when we let go, nobody
    /// released a reference while we held ours and nothing else is to do.
    before: u32,
}

impl HeldArray {
    /// Takes a reference on `ht` (none on an immutable array, which cannot change).
    ///
    /// # Safety
    /// `ht` must point to a live, initialised PHP array, on the PHP thread.
    #[inline]
    pub unsafe fn new(ht: *const zend_array) -> Self {
        let ht = ht.cast_mut();
        // SAFETY: guaranteed by the caller. The refcount is engine memory that
        // user code changes while we hold the array, behind the compiler's
        // back: it is only ever accessed with volatile reads and writes, which
        // the optimiser can neither cache nor elide (a plain increment and
        // decrement around the walk were removed as a no-op in a release build).
        let before = unsafe {
            if is_immutable(ht) {
                0
            } else {
                let before = refcount(ht);
                // GC_ADDREF
                set_refcount(ht, before + 1);
                before
            }
        };
        Self { ht, before }
    }

    /// The array: alive, and its entries unchanged, for as long as `self`
    /// lives. A pointer, not a reference: user code changes the array's
    /// header (its refcount) while we read it, which a `&zend_array` held
    /// across the walk would forbid.
    #[inline]
    pub fn as_ptr(&self) -> *const zend_array {
        self.ht
    }
}

/// `GC_TYPE_INFO(p)`: type and flags.
///
/// # Safety
/// `ht` must point to a live array.
#[inline]
unsafe fn type_info(ht: *const zend_array) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { addr_of!((*ht).gc.u.type_info).read_volatile() }
}

/// # Safety
/// `ht` must point to a live array.
#[inline]
unsafe fn is_immutable(ht: *const zend_array) -> bool {
    // SAFETY: guaranteed by the caller. GC_FLAGS(p) = type_info & GC_FLAGS_MASK.
    unsafe { type_info(ht) & GC_IMMUTABLE != 0 }
}

/// # Safety
/// `ht` must point to a live array.
#[inline]
unsafe fn refcount(ht: *const zend_array) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { addr_of!((*ht).gc.refcount).read_volatile() }
}

/// # Safety
/// `ht` must point to a live, refcounted array.
#[inline]
unsafe fn set_refcount(ht: *mut zend_array, n: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { addr_of_mut!((*ht).gc.refcount).write_volatile(n) }
}

impl Drop for HeldArray {
    /// `zend_array_release` (zend_hash.h) followed by the root check that
    /// `zval_ptr_dtor` makes (`gc_check_possible_root`, zend_gc.h), so a cycle
    /// that only we kept alive is still found by the cycle collector. The
    /// usual case (no one else let go meanwhile) is one decrement.
    #[inline]
    fn drop(&mut self) {
        let ht = self.ht;
        // SAFETY: our reference kept the array alive until now.
        unsafe {
            if is_immutable(ht) {
                return;
            }
            // GC_DELREF
            let now = refcount(ht) - 1;
            set_refcount(ht, now);
            if now == self.before {
                return;
            }
            if now == 0 {
                // We held the last reference (user code dropped theirs mid-walk):
                // destroy it as zval_ptr_dtor would; its destructors may run.
                ffi::zend_array_destroy(ht);
            } else if type_info(ht) & (GC_INFO_MASK | GC_NOT_COLLECTABLE) == 0 {
                // GC_MAY_LEAK: not yet a possible root and collectable.
                ffi::gc_possible_root(ht.cast::<zend_refcounted>());
            }
        }
    }
}

//! `ChunkIter`, the iterator a synchronous stream proxy hands a `for` loop: each item of the
//! stream's own iterator goes to the stream's collector with its arrival time and is handed on
//! as it came; when that iterator ends or raises, the stream's state ends it ("exhausted" or
//! "error") and the end or the exception reaches the caller unchanged. `owner` (the proxy) is
//! kept alive while the loop runs: `for c in call(...)` holds no other reference to it, and its
//! collection would end the stream's span before the first item.
//!
//! A type written against the C API rather than a `#[pyclass]`: `__next__` runs once per chunk
//! of every stream, and PyO3's method trampoline (its thread-local bookkeeping, the argument
//! and result conversions) cost about as much as reading the chunk. What runs per item here is
//! the stream's own `next`, the clock and the collector.

use std::ffi::{c_int, c_void};
use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::chunks::{perf_counter_ns, ChunkCollector};
use super::stream::{StreamState, ERROR, EXHAUSTED};

#[repr(C)]
struct RawChunkIter {
    ob_base: ffi::PyObject,
    /// The stream's own iterator.
    inner: *mut ffi::PyObject,
    /// The state's ChunkCollector.
    collector: *mut ffi::PyObject,
    /// The StreamState.
    state: *mut ffi::PyObject,
    owner: *mut ffi::PyObject,
}

static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The `ChunkIter` type, made once.
pub(super) fn chunk_iter_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TYPE.get_or_try_init(py, || {
        static mut METHODS: [ffi::PyMethodDef; 2] = [
            ffi::PyMethodDef {
                ml_name: c"close".as_ptr(),
                ml_meth: ffi::PyMethodDefPointer { PyCFunction: close },
                ml_flags: ffi::METH_NOARGS,
                ml_doc: c"close() of the stream's own iterator, when it has one.".as_ptr(),
            },
            ffi::PyMethodDef::zeroed(),
        ];
        let mut slots = [
            slot(ffi::Py_tp_new, new as *mut c_void),
            slot(ffi::Py_tp_iter, ffi::PyObject_SelfIter as *mut c_void),
            slot(ffi::Py_tp_iternext, next as *mut c_void),
            slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
            slot(ffi::Py_tp_traverse, traverse as *mut c_void),
            slot(ffi::Py_tp_clear, clear as *mut c_void),
            // Only the table's address is taken: CPython reads it, never writes it.
            slot(
                ffi::Py_tp_methods,
                ptr::addr_of_mut!(METHODS) as *mut c_void,
            ),
            slot(0, ptr::null_mut()),
        ];
        let mut spec = ffi::PyType_Spec {
            name: c"llmprobe._core.ChunkIter".as_ptr(),
            basicsize: std::mem::size_of::<RawChunkIter>() as c_int,
            itemsize: 0,
            flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as _,
            slots: slots.as_mut_ptr(),
        };
        // SAFETY: a complete spec; CPython copies what it keeps of it.
        let tp = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec))? };
        Ok(tp.cast_into::<PyType>()?.unbind())
    })
    .map(|t| t.bind(py))
}

fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// `ChunkIter(iterator, state, owner)`.
unsafe extern "C" fn new(
    tp: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_new with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let made = (|| -> PyResult<*mut ffi::PyObject> {
        // SAFETY: `args` is the call's argument tuple.
        let args = unsafe { Bound::from_borrowed_ptr(py, args) };
        let (iterator, state, owner): (Bound<'_, PyAny>, Bound<'_, StreamState>, Bound<'_, PyAny>) =
            args.extract().map_err(|e| {
                let usage = "ChunkIter(iterator, state: StreamState, owner)";
                pyo3::exceptions::PyTypeError::new_err(format!("{usage}: {e}"))
            })?;
        let inner = iterator.try_iter()?;
        let collector = state.get().chunk_collector().clone_ref(py);
        // SAFETY: allocation of an instance of this GC type (tracked, fields zeroed).
        let obj = unsafe { ffi::PyType_GenericAlloc(tp, 0) };
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let raw = obj as *mut RawChunkIter;
        // SAFETY: a fresh instance; each field takes a reference of its own.
        unsafe {
            (*raw).inner = inner.into_ptr();
            (*raw).collector = collector.into_ptr();
            (*raw).state = state.into_ptr();
            (*raw).owner = owner.into_ptr();
        }
        Ok(obj)
    })();
    made.unwrap_or_else(|e| {
        e.restore(py);
        ptr::null_mut()
    })
}

unsafe extern "C" fn next(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let raw = slf as *mut RawChunkIter;
    // SAFETY: CPython calls tp_iternext with the GIL held, on a live instance whose fields
    // new() set (clear() empties them only when the instance is being collected).
    unsafe {
        if (*raw).inner.is_null() {
            return ptr::null_mut();
        }
        let item = ffi::PyIter_Next((*raw).inner);
        let py = Python::assume_attached();
        if !item.is_null() {
            let now = perf_counter_ns(py);
            let collector = Bound::from_borrowed_ptr(py, (*raw).collector);
            if let Ok(mut c) = collector
                .cast_unchecked::<ChunkCollector>()
                .try_borrow_mut()
            {
                c.add(&Bound::from_borrowed_ptr(py, item), now);
            }
            return item;
        }
        let state = Bound::from_borrowed_ptr(py, (*raw).state);
        let state = state.cast_unchecked::<StreamState>();
        match PyErr::take(py) {
            Some(error) => {
                StreamState::end(state, Some(error.value(py).as_any()), ERROR);
                error.restore(py);
            }
            None => StreamState::end(state, None, EXHAUSTED),
        }
        ptr::null_mut()
    }
}

unsafe extern "C" fn close(slf: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: a method call: the GIL is held and `slf` is a live instance.
    let py = unsafe { Python::assume_attached() };
    let inner = unsafe { (*(slf as *mut RawChunkIter)).inner };
    let closed = (|| -> PyResult<()> {
        if inner.is_null() {
            return Ok(());
        }
        // SAFETY: a live field of a live instance.
        let inner = unsafe { Bound::from_borrowed_ptr(py, inner) };
        if inner.hasattr(pyo3::intern!(py, "close"))? {
            inner.call_method0(pyo3::intern!(py, "close"))?;
        }
        Ok(())
    })();
    match closed {
        Ok(()) => py.None().into_ptr(),
        Err(e) => {
            e.restore(py);
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn traverse(
    slf: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    let raw = slf as *mut RawChunkIter;
    // SAFETY: called by the collector on a live instance; a heap type's instances visit it.
    unsafe {
        for field in [
            (*raw).inner,
            (*raw).collector,
            (*raw).state,
            (*raw).owner,
            ffi::Py_TYPE(slf) as *mut ffi::PyObject,
        ] {
            if !field.is_null() {
                let r = visit(field, arg);
                if r != 0 {
                    return r;
                }
            }
        }
    }
    0
}

unsafe extern "C" fn clear(slf: *mut ffi::PyObject) -> c_int {
    let raw = slf as *mut RawChunkIter;
    // SAFETY: each field is taken out before its reference is dropped, so that code run by
    // that drop never sees it.
    unsafe {
        for field in [
            &mut (*raw).inner,
            &mut (*raw).collector,
            &mut (*raw).state,
            &mut (*raw).owner,
        ] {
            let old = std::mem::replace(field, ptr::null_mut());
            ffi::Py_XDECREF(old);
        }
    }
    0
}

unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    // SAFETY: the last reference is gone; the instance is untracked before its fields are
    // dropped, then freed, and the reference to its heap type it held is given back.
    unsafe {
        let tp = ffi::Py_TYPE(slf);
        ffi::PyObject_GC_UnTrack(slf as *mut c_void);
        clear(slf);
        ffi::PyObject_GC_Del(slf as *mut c_void);
        ffi::Py_DECREF(tp as *mut ffi::PyObject);
    }
}

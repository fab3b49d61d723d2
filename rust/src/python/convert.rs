//! Python values to plain Rust values, fast: exact-type dispatch first, and strings read
//! without copying when CPython already holds them as UTF-8.

use std::os::raw::c_char;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::span::{AttrValue, Attributes, LIMITS};

unsafe extern "C" {
    // In every CPython this project supports, though in the limited API only from 3.10; it is
    // exported by 3.9 as well, and it avoids a copy per string read.
    fn PyUnicode_AsUTF8AndSize(o: *mut ffi::PyObject, size: *mut ffi::Py_ssize_t) -> *const c_char;
}

/// Calls `f` with each (key, value) of `d`, read with PyDict_Next. A dict another thread changes
/// meanwhile (when a value's `__str__` or a model's dump lets it run) is read as far as it goes:
/// pyo3's own dict iterator panics when the size changes under it, and a panic must never reach
/// the application.
pub fn dict_items<'py>(
    d: &Bound<'py, PyDict>,
    mut f: impl FnMut(Bound<'py, PyAny>, Bound<'py, PyAny>),
) {
    let py = d.py();
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: PyDict_Next on a live dict with the GIL held; it gives borrowed references, taken
    // as new ones at once, so that a change to the dict cannot free them while `f` runs.
    while unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut key, &mut value) } != 0 {
        let (k, v) = unsafe {
            (
                Bound::from_borrowed_ptr(py, key),
                Bound::from_borrowed_ptr(py, value),
            )
        };
        f(k, v);
    }
}

/// The text of `s`, borrowed from the string object (valid while `s` lives).
pub fn str_of<'a>(s: &'a Bound<'_, PyString>) -> std::borrow::Cow<'a, str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str object; the returned buffer is owned by it (cached UTF-8).
    let ptr = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
    if ptr.is_null() {
        // Lone surrogates cannot be UTF-8: clear the error and replace them.
        let _ = PyErr::take(s.py());
        return std::borrow::Cow::Owned(s.to_string_lossy().into_owned());
    }
    // SAFETY: CPython guarantees `size` bytes of valid UTF-8 at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, size as usize) };
    std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// The text of any value: a str's own (borrowed), anything else's `str()` (empty if that
/// raises).
pub fn any_text<'a>(v: &'a Bound<'_, PyAny>) -> std::borrow::Cow<'a, str> {
    match v.cast::<PyString>() {
        Ok(s) => str_of(s),
        Err(_) => std::borrow::Cow::Owned(v.str().map(|s| s.to_string()).unwrap_or_default()),
    }
}

/// The first `max` characters of `s` as a Rust string. A huge string is sliced by CPython
/// first, so only the part kept is ever converted.
pub fn str_prefix(s: &Bound<'_, PyString>, max: Option<usize>) -> String {
    if let Some(max) = max {
        // SAFETY: plain calls on a live str object.
        let len = unsafe { ffi::PyUnicode_GetLength(s.as_ptr()) };
        if len > max as ffi::Py_ssize_t {
            let sub = unsafe { ffi::PyUnicode_Substring(s.as_ptr(), 0, max as ffi::Py_ssize_t) };
            if !sub.is_null() {
                // SAFETY: a new reference we own.
                let sub = unsafe { Bound::from_owned_ptr(s.py(), sub) };
                if let Ok(sub) = sub.cast_into::<PyString>() {
                    return str_of(&sub).into_owned();
                }
            } else {
                let _ = PyErr::take(s.py());
            }
        }
    }
    str_of(s).into_owned()
}

/// An attribute value, or None for a value the OpenTelemetry data model cannot hold.
pub fn to_attr(v: &Bound<'_, PyAny>) -> Option<AttrValue> {
    if let Ok(s) = v.cast_exact::<PyString>() {
        return Some(AttrValue::Str(str_prefix(s, LIMITS.value_length())));
    }
    if v.is_exact_instance_of::<PyBool>() {
        return Some(AttrValue::Bool(v.is_truthy().ok()?));
    }
    if v.is_exact_instance_of::<PyInt>() {
        return Some(int_value(v));
    }
    if v.is_exact_instance_of::<PyFloat>() {
        return Some(AttrValue::Float(v.extract::<f64>().ok()?));
    }
    if let Ok(l) = v.cast::<PyList>() {
        return array(l.iter());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return array(t.iter());
    }
    // Subclasses (str enums, numpy scalars that subclass float, IntEnum, ...).
    if let Ok(s) = v.cast::<PyString>() {
        return Some(AttrValue::Str(str_of(s).into_owned()));
    }
    if v.is_instance_of::<PyBool>() {
        return Some(AttrValue::Bool(v.is_truthy().ok()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Some(int_value(v));
    }
    if v.is_instance_of::<PyFloat>() {
        return Some(AttrValue::Float(v.extract::<f64>().ok()?));
    }
    None
}

fn int_value(v: &Bound<'_, PyAny>) -> AttrValue {
    match v.extract::<i64>() {
        Ok(i) => AttrValue::Int(i),
        // Too big for 64 bits: keep the digits rather than lose the value.
        Err(_) => AttrValue::Str(v.str().map(|s| s.to_string()).unwrap_or_default()),
    }
}

/// A homogeneous sequence; mixed or nested ones are refused, as the SDK refuses them.
fn array<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>) -> Option<AttrValue> {
    let mut out: Option<AttrValue> = None;
    for item in items {
        let v = to_attr(&item)?;
        match (&mut out, v) {
            (None, AttrValue::Str(s)) => out = Some(AttrValue::StrArray(vec![s])),
            (None, AttrValue::Bool(b)) => out = Some(AttrValue::BoolArray(vec![b])),
            (None, AttrValue::Int(i)) => out = Some(AttrValue::IntArray(vec![i])),
            (None, AttrValue::Float(f)) => out = Some(AttrValue::FloatArray(vec![f])),
            (Some(AttrValue::StrArray(a)), AttrValue::Str(s)) => a.push(s),
            (Some(AttrValue::BoolArray(a)), AttrValue::Bool(b)) => a.push(b),
            (Some(AttrValue::IntArray(a)), AttrValue::Int(i)) => a.push(i),
            (Some(AttrValue::FloatArray(a)), AttrValue::Float(f)) => a.push(f),
            (Some(AttrValue::FloatArray(a)), AttrValue::Int(i)) => a.push(i as f64),
            _ => return None,
        }
    }
    Some(out.unwrap_or(AttrValue::StrArray(Vec::new())))
}

/// Calls `f` for each valid (key, value) of a mapping; invalid entries are skipped.
pub fn for_each_attr(
    mapping: &Bound<'_, PyAny>,
    mut f: impl FnMut(String, AttrValue),
) -> PyResult<()> {
    if mapping.is_none() {
        return Ok(());
    }
    let mut one = |k: Bound<'_, PyAny>, v: Bound<'_, PyAny>| {
        if let (Ok(k), Some(v)) = (k.cast::<PyString>(), to_attr(&v)) {
            f(str_of(k).into_owned(), v);
        }
    };
    if let Ok(d) = mapping.cast::<PyDict>() {
        dict_items(d, one);
    } else {
        for item in mapping.call_method0("items")?.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            one(k, v);
        }
    }
    Ok(())
}

pub fn attrs_of(mapping: Option<&Bound<'_, PyAny>>) -> PyResult<Attributes> {
    let mut out = Vec::new();
    if let Some(m) = mapping {
        for_each_attr(m, |k, v| {
            let mut dropped = 0;
            crate::span::set_in(&mut out, &mut dropped, k, v);
        })?;
    }
    Ok(out)
}

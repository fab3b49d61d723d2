//! Python structures to JSON, with every string cut to the content limit while it is written,
//! so a 10 MB prompt costs about as much as its first few KB and the result is always valid
//! JSON. Dispatch on the exact type first (the common case), then on protocols: pydantic
//! models, dataclasses, enums, mappings, sequences, objects with `__dict__`; anything else is
//! written as its `str()`.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple, PyType,
};

use super::convert::{dict_items, str_of, str_prefix};
use crate::content::write_json_str;

/// Deeper structures are cut off here.
const MAX_DEPTH: usize = 48;

static ENUM_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub struct JsonWriter {
    pub out: String,
    max: usize,
    /// Containers on the current path, to spot self-references.
    path: Vec<usize>,
    /// A framework's objects written in their own shape (see with_objects); false: not one.
    objects: Option<ObjectWriter>,
}

/// Writes an object a framework knows (a LangChain message, say) in the contract's shape, or
/// returns false to let the writer go on with its general rules.
pub type ObjectWriter = fn(&mut JsonWriter, &Bound<'_, PyAny>) -> bool;

impl JsonWriter {
    pub fn new(max: usize) -> Self {
        JsonWriter {
            out: String::with_capacity(256),
            max,
            path: Vec::new(),
            objects: None,
        }
    }

    /// A writer that asks `objects` first about every object its general rules would take
    /// apart (pydantic models, dataclasses, objects with `__dict__`).
    pub fn with_objects(max: usize, objects: ObjectWriter) -> Self {
        let mut w = JsonWriter::new(max);
        w.objects = Some(objects);
        w
    }

    fn string(&mut self, s: &Bound<'_, PyString>) {
        // SAFETY: a plain call on a live str object.
        let chars = unsafe { pyo3::ffi::PyUnicode_GetLength(s.as_ptr()) };
        if chars >= 0 && chars as usize <= self.max {
            write_json_str(&mut self.out, &str_of(s)); // borrowed: no copy of a text kept whole
        } else {
            write_json_str(&mut self.out, &str_prefix(s, Some(self.max)));
        }
    }

    pub(crate) fn text(&mut self, s: &str) {
        write_json_str(&mut self.out, crate::content::truncate_str(s, self.max));
    }

    /// A media part in the conventions' shape (see `crate::media`).
    pub(crate) fn media(&mut self, kind: &str, source: &crate::media::Source<'_>) {
        crate::media::write_part(&mut self.out, kind, source, self.max);
    }

    pub fn value(&mut self, v: &Bound<'_, PyAny>) {
        if v.is_none() {
            self.out.push_str("null");
        } else if let Ok(s) = v.cast_exact::<PyString>() {
            self.string(s);
        } else if v.is_exact_instance_of::<PyBool>() {
            self.out.push_str(if v.is_truthy().unwrap_or(false) {
                "true"
            } else {
                "false"
            });
        } else if v.is_exact_instance_of::<PyInt>() {
            self.int(v);
        } else if v.is_exact_instance_of::<PyFloat>() {
            self.float(v);
        } else if let Ok(d) = v.cast_exact::<PyDict>() {
            self.nested(v, |w| w.dict(d));
        } else if let Ok(l) = v.cast_exact::<PyList>() {
            self.nested(v, |w| w.seq(l.iter()));
        } else {
            self.slow(v);
        }
    }

    fn slow(&mut self, v: &Bound<'_, PyAny>) {
        let py = v.py();
        if let Ok(s) = v.cast::<PyString>() {
            self.string(s);
        } else if v.is_instance_of::<PyBool>() {
            self.out.push_str(if v.is_truthy().unwrap_or(false) {
                "true"
            } else {
                "false"
            });
        } else if is_enum(v) {
            match v.getattr("value") {
                Ok(inner) => self.nested(v, |w| w.value(&inner)),
                Err(_) => self.as_str(v),
            }
        } else if v.is_instance_of::<PyInt>() {
            self.int(v);
        } else if v.is_instance_of::<PyFloat>() {
            self.float(v);
        } else if let Ok(d) = v.cast::<PyDict>() {
            self.nested(v, |w| w.dict(d));
        } else if let Ok(t) = v.cast::<PyTuple>() {
            self.nested(v, |w| w.seq(t.iter()));
        } else if let Ok(l) = v.cast::<PyList>() {
            self.nested(v, |w| w.seq(l.iter()));
        } else if v.is_instance_of::<PySet>() || v.is_instance_of::<PyFrozenSet>() {
            // Python's own iterator: a set changed meanwhile ends it (pyo3's would panic).
            match v.try_iter() {
                Ok(items) => self.nested(v, |w| w.seq(items.map_while(Result::ok))),
                Err(_) => self.as_str(v),
            }
        } else if self.objects.is_some_and(|objects| objects(self, v)) {
        } else if v.is_instance_of::<PyBytes>() || v.is_instance_of::<PyByteArray>() {
            let n = v.len().unwrap_or(0);
            self.text(&format!("<{n} bytes>"));
        } else if is_text_scalar(v) {
            self.as_str(v);
        } else if let Some(dumped) = pydantic_dump(v) {
            self.nested(v, |w| w.value(&dumped));
        } else if let Some(fields) = dataclass_fields(v) {
            self.nested(v, |w| w.object_fields(v, &fields));
        } else if let Ok(d) = v.getattr(pyo3::intern!(py, "__dict__")) {
            match d.cast::<PyDict>() {
                Ok(d) => {
                    let d = d.clone();
                    self.nested(v, |w| w.public_dict(&d));
                }
                Err(_) => self.as_str(v),
            }
        } else {
            self.as_str(v);
        }
    }

    fn as_str(&mut self, v: &Bound<'_, PyAny>) {
        match v.str() {
            Ok(s) => self.string(&s),
            Err(_) => self.out.push_str("null"),
        }
    }

    fn int(&mut self, v: &Bound<'_, PyAny>) {
        match v.extract::<i64>() {
            Ok(i) => {
                let _ = write!(self.out, "{i}");
            }
            // Bigger than 64 bits: its decimal digits are still a JSON number.
            Err(_) => match v.str() {
                Ok(s) => self.out.push_str(&str_of(&s)),
                Err(_) => self.out.push_str("null"),
            },
        }
    }

    fn float(&mut self, v: &Bound<'_, PyAny>) {
        match v
            .extract::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.out.push_str("null"), // NaN and infinities have no JSON form
        }
    }

    /// Writes a container, guarding against self-reference and runaway depth.
    pub(crate) fn nested(&mut self, v: &Bound<'_, PyAny>, body: impl FnOnce(&mut Self)) {
        let id = v.as_ptr() as usize;
        if self.path.contains(&id) {
            self.out.push_str("\"<recursion>\"");
            return;
        }
        if self.path.len() >= MAX_DEPTH {
            self.out.push_str("\"<too deep>\"");
            return;
        }
        self.path.push(id);
        body(self);
        self.path.pop();
    }

    /// A key is structure, not content: written whole.
    fn key(&mut self, k: &Bound<'_, PyAny>) {
        let k = match k.cast::<PyString>() {
            Ok(s) => s.clone(),
            Err(_) => match k.str() {
                Ok(s) => s,
                Err(_) => {
                    self.out.push_str("\"\"");
                    return;
                }
            },
        };
        write_json_str(&mut self.out, &str_of(&k));
    }

    fn dict(&mut self, d: &Bound<'_, PyDict>) {
        self.out.push('{');
        let mut first = true;
        dict_items(d, |k, v| {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.key(&k);
            self.out.push(':');
            self.value(&v);
        });
        self.out.push('}');
    }

    /// An object's `__dict__`, without its private (`_`-prefixed) entries.
    fn public_dict(&mut self, d: &Bound<'_, PyDict>) {
        self.out.push('{');
        let mut first = true;
        dict_items(d, |k, v| {
            if let Ok(ks) = k.cast::<PyString>() {
                if str_of(ks).starts_with('_') {
                    return;
                }
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            self.key(&k);
            self.out.push(':');
            self.value(&v);
        });
        self.out.push('}');
    }

    fn object_fields(&mut self, obj: &Bound<'_, PyAny>, fields: &[Bound<'_, PyString>]) {
        self.out.push('{');
        let mut first = true;
        for name in fields {
            let Ok(v) = obj.getattr(name) else { continue };
            if !first {
                self.out.push(',');
            }
            first = false;
            write_json_str(&mut self.out, &str_of(name));
            self.out.push(':');
            self.value(&v);
        }
        self.out.push('}');
    }

    fn seq<'py>(&mut self, items: impl Iterator<Item = Bound<'py, PyAny>>) {
        self.out.push('[');
        let mut first = true;
        for item in items {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.value(&item);
        }
        self.out.push(']');
    }
}

fn is_enum(v: &Bound<'_, PyAny>) -> bool {
    let py = v.py();
    let t = ENUM_TYPE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(py
            .import("enum")?
            .getattr("Enum")?
            .cast_into::<PyType>()?
            .unbind())
    });
    match t {
        Ok(t) => v.is_instance(t.bind(py)).unwrap_or(false),
        Err(_) => false,
    }
}

/// A value of the standard library that JSON writes as its text (as pydantic's JSON mode does):
/// a Decimal (model usage prices), a UUID, a date or time. Known by its type's name and module,
/// before the object rules below would look for fields it has none of (each miss raising and
/// clearing an AttributeError).
fn is_text_scalar(v: &Bound<'_, PyAny>) -> bool {
    let py = v.py();
    let t = v.get_type();
    let Ok(module) = t.getattr(pyo3::intern!(py, "__module__")) else {
        return false;
    };
    let Ok(module) = module.cast_into::<PyString>() else {
        return false;
    };
    match &*str_of(&module) {
        "decimal" | "_decimal" | "_pydecimal" => true,
        "uuid" => t.name().is_ok_and(|n| str_of(&n) == "UUID"),
        "datetime" => t
            .name()
            .is_ok_and(|n| matches!(&*str_of(&n), "datetime" | "date" | "time")),
        _ => false,
    }
}

/// A pydantic (v2 or v1) model as a plain dict, without its unset `None`s. pydantic 2's JSON
/// mode gives the text of its Decimals, dates and UUIDs itself; a model it cannot serialise that
/// way (a field of an arbitrary type) is dumped as Python objects.
fn pydantic_dump<'py>(v: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = v.py();
    let t = v.get_type();
    if t.hasattr(pyo3::intern!(py, "model_dump")).unwrap_or(false)
        && t.hasattr(pyo3::intern!(py, "model_fields"))
            .unwrap_or(false)
    {
        let kwargs = PyDict::new(py);
        kwargs.set_item("exclude_none", true).ok()?;
        kwargs.set_item("mode", "json").ok()?;
        kwargs.set_item("warnings", false).ok()?;
        if let Ok(dumped) = v.call_method("model_dump", (), Some(&kwargs)) {
            return Some(dumped);
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("exclude_none", true).ok()?;
        return v.call_method("model_dump", (), Some(&kwargs)).ok();
    }
    if t.hasattr(pyo3::intern!(py, "__fields__")).unwrap_or(false)
        && t.hasattr(pyo3::intern!(py, "dict")).unwrap_or(false)
        && t.hasattr(pyo3::intern!(py, "parse_obj")).unwrap_or(false)
    {
        let kwargs = PyDict::new(py);
        kwargs.set_item("exclude_none", true).ok()?;
        return v.call_method("dict", (), Some(&kwargs)).ok();
    }
    None
}

fn dataclass_fields<'py>(v: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyString>>> {
    let py = v.py();
    let fields = v
        .get_type()
        .getattr(pyo3::intern!(py, "__dataclass_fields__"))
        .ok()?;
    let fields = fields.cast::<PyDict>().ok()?;
    Some(
        fields
            .keys()
            .iter()
            .filter_map(|k| k.cast_into::<PyString>().ok())
            .collect(),
    )
}

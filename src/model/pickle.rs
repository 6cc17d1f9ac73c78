//! A restricted pickle reader. It understands every opcode of protocols 0–5 and builds a tree of
//! plain values, but it never imports or calls anything: a global is a name, `REDUCE` is a record
//! of a call that was *not* made. What a checkpoint needs (tensors, their storages, dict keys) is
//! read off that tree, and every global it names is judged against an allowlist of torch/numpy
//! rebuild functions and a denylist of modules that run code.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::rc::Rc;

use super::Risk;

/// Opcodes one pickle may run. Each builds at most one value, so this bounds the reader's memory
/// (about 100 bytes a value at worst, so ≈ 1 GB) and time; a `torch.save` state_dict takes about
/// 30 opcodes a tensor.
pub const MAX_OPCODES: u64 = 10_000_000;

/// How deeply containers may nest. Python's pickler recurses once per level and stops at its
/// recursion limit (1000 by default), so real pickles stay far below this.
pub const MAX_DEPTH: usize = 10_000;

/// Opcodes that cannot be resolved without Python, listed at most this many times.
const MAX_OPAQUE: usize = 64;

/// A value of the pickle machine. Containers are shared (`Rc`) because the memo shares them.
#[derive(Clone, Debug)]
pub enum Value {
    /// Python's `None` (NONE).
    None,
    /// `True` or `False` (NEWTRUE, NEWFALSE, and protocol 0's `INT 01`/`INT 00`).
    Bool(bool),
    /// An integer that fits in i64 (the INT, LONG and BININT families, LONG1/LONG4 of at most 8 bytes).
    Int(i64),
    /// An integer too large for i64 (kept as its little-endian two's-complement bytes).
    BigInt(Rc<[u8]>),
    /// A float (FLOAT, BINFLOAT).
    Float(f64),
    /// Text: the unicode string opcodes, protocol 0–2 byte strings that are valid UTF-8, and the
    /// digits of a protocol 0 LONG too large for i64.
    Str(Rc<str>),
    /// Bytes (the BYTES opcodes, BYTEARRAY8, and Python 2 strings that are not UTF-8).
    Bytes(Rc<[u8]>),
    /// A tuple; immutable, so shared without a `RefCell`.
    Tuple(Rc<[Value]>),
    /// A list; later APPEND/APPENDS opcodes add to it, through the memo too.
    List(Rc<RefCell<Vec<Value>>>),
    /// A dict as its pairs in insertion order (keys are not hashed, so duplicates are kept).
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A set or frozenset, as its items in the order added.
    Set(Rc<RefCell<Vec<Value>>>),
    /// A global named by GLOBAL, STACK_GLOBAL or an extension code, never imported.
    Global(Rc<Global>),
    /// The result of a call that was not made (`REDUCE`, `NEWOBJ`, `INST`, `OBJ`), with what later
    /// opcodes did to it (`BUILD` state, `SETITEMS` on an OrderedDict, …).
    Object(Rc<RefCell<Object>>),
    /// A persistent id (`torch.save` refers to storages this way).
    Persistent(Rc<Value>),
}

/// A global the pickle names (`torch._utils._rebuild_tensor_v2`), as text only.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Global {
    /// Dotted module path (`torch._utils`); `copyreg-extension` for an extension-registry code.
    pub module: String,
    /// Name within the module (`_rebuild_tensor_v2`); the code, in decimal, for an extension.
    pub name: String,
}

impl Global {
    /// Whether this is `module.name`, both compared exactly.
    pub fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }
}

/// A call that was recorded instead of made, and what the opcodes after it did to its result.
#[derive(Debug)]
pub struct Object {
    /// What would have been called: usually a [`Value::Global`] (a class or rebuild function).
    pub callable: Value,
    /// Its arguments: the popped value for REDUCE and NEWOBJ, a tuple of the marked items for
    /// OBJ and INST, `(args, kwargs)` for NEWOBJ_EX.
    pub args: Value,
    /// The state a BUILD gave it (for a module, its attribute dict), if any.
    pub state: Option<Value>,
    /// Pairs SETITEM/SETITEMS set on it (an `OrderedDict` state_dict's entries).
    pub items: Vec<(Value, Value)>,
    /// Items APPEND/APPENDS/ADDITEMS added to it.
    pub appended: Vec<Value>,
}

impl Value {
    /// The text of a [`Value::Str`]; `None` for anything else.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// An [`Value::Int`], or a [`Value::Bool`] as 0 or 1; `None` for anything else (a
    /// [`Value::BigInt`] included).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    /// The name a [`Value::Global`] holds; `None` for anything else.
    pub fn as_global(&self) -> Option<&Global> {
        match self {
            Value::Global(g) => Some(g),
            _ => None,
        }
    }
    /// The items of a tuple or list, copied out.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(t) => Some(t.to_vec()),
            Value::List(l) => Some(l.borrow().clone()),
            _ => None,
        }
    }
    /// Short text for keys and metadata (`3`, `"fc1"`, `0.5`).
    pub fn key_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::None => Some("None".to_string()),
            _ => None,
        }
    }
}

/// Dropping a value tree recursively would overflow the stack on a hostile pickle nested a million
/// levels deep, so the containers this value is the last owner of are taken apart one at a time.
impl Drop for Value {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        detach_children(self, &mut pending);
        while let Some(mut v) = pending.pop() {
            detach_children(&mut v, &mut pending);
        }
    }
}

/// Moves the children out of a container that nothing else shares (they are dropped by the
/// caller's loop, not by recursion).
fn detach_children(v: &mut Value, out: &mut Vec<Value>) {
    let mut take = |v: &mut Value| {
        if node_ptr(v).is_some() {
            out.push(std::mem::replace(v, Value::None));
        }
    };
    match v {
        Value::Tuple(t) => {
            if let Some(items) = Rc::get_mut(t) {
                items.iter_mut().for_each(&mut take);
            }
        }
        // Shared cells may also be held weakly (by `Cycles`); being the last strong owner is
        // what matters.
        Value::List(l) | Value::Set(l) if Rc::strong_count(l) == 1 => {
            l.borrow_mut().iter_mut().for_each(&mut take);
        }
        Value::Dict(d) if Rc::strong_count(d) == 1 => {
            for (k, v) in d.borrow_mut().iter_mut() {
                take(k);
                take(v);
            }
        }
        Value::Object(o) if Rc::strong_count(o) == 1 => {
            let mut o = o.borrow_mut();
            take(&mut o.callable);
            take(&mut o.args);
            if let Some(s) = o.state.as_mut() {
                take(s);
            }
            for (k, v) in o.items.iter_mut() {
                take(k);
                take(v);
            }
            o.appended.iter_mut().for_each(&mut take);
        }
        Value::Persistent(p) => {
            if let Some(p) = Rc::get_mut(p) {
                take(p);
            }
        }
        _ => {}
    }
}

/// The address of a container's shared allocation (`None` for a leaf), which names it while a
/// strong or weak reference to it is held.
fn node_ptr(v: &Value) -> Option<*const ()> {
    Some(match v {
        Value::Tuple(t) => Rc::as_ptr(t) as *const (),
        Value::List(l) | Value::Set(l) => Rc::as_ptr(l) as *const (),
        Value::Dict(d) => Rc::as_ptr(d) as *const (),
        Value::Object(o) => Rc::as_ptr(o) as *const (),
        Value::Persistent(p) => Rc::as_ptr(p) as *const (),
        _ => return None,
    })
}

/// How many references to a container exist (0 for a leaf).
fn strong_count(v: &Value) -> usize {
    match v {
        Value::Tuple(t) => Rc::strong_count(t),
        Value::List(l) | Value::Set(l) => Rc::strong_count(l),
        Value::Dict(d) => Rc::strong_count(d),
        Value::Object(o) => Rc::strong_count(o),
        Value::Persistent(p) => Rc::strong_count(p),
        _ => 0,
    }
}

/// Calls `f` with each container directly inside `v` (leaves are skipped).
fn for_each_child(v: &Value, mut f: impl FnMut(&Value)) {
    let mut visit = |c: &Value| {
        if node_ptr(c).is_some() {
            f(c)
        }
    };
    match v {
        Value::Tuple(t) => t.iter().for_each(&mut visit),
        Value::List(l) | Value::Set(l) => l.borrow().iter().for_each(&mut visit),
        Value::Dict(d) => d.borrow().iter().for_each(|(k, v)| {
            visit(k);
            visit(v);
        }),
        Value::Object(o) => {
            let o = o.borrow();
            visit(&o.callable);
            visit(&o.args);
            if let Some(s) = &o.state {
                visit(s);
            }
            o.items.iter().for_each(|(k, v)| {
                visit(k);
                visit(v);
            });
            o.appended.iter().for_each(&mut visit);
        }
        Value::Persistent(p) => visit(p),
        _ => {}
    }
}

/// Whether containers nest more than `limit` levels below `root`: a depth-first walk with its own
/// stack (never recursion), visiting each shared container once.
fn nests_deeper(root: &Value, limit: usize) -> bool {
    let mut seen: HashSet<*const ()> = HashSet::new();
    let mut stack: Vec<(Value, usize)> = vec![(root.clone(), 0)];
    while let Some((v, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        match node_ptr(&v) {
            Some(ptr) if seen.insert(ptr) => {}
            _ => continue,
        }
        for_each_child(&v, |c| stack.push((c.clone(), depth + 1)));
    }
    false
}

/// A container the pickle changed after building it (`SETITEMS`, `APPENDS`, `BUILD`, …), held
/// weakly. Only such a change can make a cycle (a new container holds only older values), so
/// these are where cycles are looked for.
#[derive(Debug)]
enum Mutated {
    Seq(std::rc::Weak<RefCell<Vec<Value>>>),
    Dict(std::rc::Weak<RefCell<Vec<(Value, Value)>>>),
    Object(std::rc::Weak<RefCell<Object>>),
}

/// The containers a pickle changed. A pickle can put a list, dict or object into itself (Python's
/// pickler writes exactly that for a self-referencing object), and `Rc` never frees a cycle; so
/// when the reader's values are gone (this is the last field of [`Machine`] and [`Parsed`], and
/// fields drop in order), whatever the changed containers still reach is tried for deletion:
/// containers held only by each other are emptied, anything still held from outside is left as
/// it is.
#[derive(Debug, Default)]
struct Cycles {
    mutated: Vec<Mutated>,
    /// Addresses in `mutated`; the weak references keep each address from being reused.
    seen: HashSet<*const ()>,
}

impl Cycles {
    fn note(&mut self, target: &Value) {
        let m = match target {
            Value::List(l) | Value::Set(l) => Mutated::Seq(Rc::downgrade(l)),
            Value::Dict(d) => Mutated::Dict(Rc::downgrade(d)),
            Value::Object(o) => Mutated::Object(Rc::downgrade(o)),
            _ => return,
        };
        if self.seen.insert(node_ptr(target).expect("a container")) {
            self.mutated.push(m);
        }
    }
}

impl Drop for Cycles {
    fn drop(&mut self) {
        let alive: Vec<Value> = self
            .mutated
            .drain(..)
            .filter_map(|m| match m {
                Mutated::Seq(w) => w.upgrade().map(Value::List),
                Mutated::Dict(w) => w.upgrade().map(Value::Dict),
                Mutated::Object(w) => w.upgrade().map(Value::Object),
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        // Every container reachable from the changed ones, one reference each.
        let mut index: std::collections::HashMap<*const (), usize> = Default::default();
        let mut nodes: Vec<Value> = Vec::new();
        let mut todo = alive;
        while let Some(v) = todo.pop() {
            let ptr = node_ptr(&v).expect("only containers are visited");
            if index.contains_key(&ptr) {
                continue;
            }
            index.insert(ptr, nodes.len());
            for_each_child(&v, |c| todo.push(c.clone()));
            nodes.push(v);
        }
        // References from inside the set; a container with more (besides the one in `nodes`) is
        // held from outside, and so is everything it reaches.
        let mut inside = vec![0usize; nodes.len()];
        for v in &nodes {
            for_each_child(v, |c| inside[index[&node_ptr(c).unwrap()]] += 1);
        }
        let mut live = vec![false; nodes.len()];
        let mut todo: Vec<usize> = (0..nodes.len())
            .filter(|&i| strong_count(&nodes[i]) - 1 > inside[i])
            .collect();
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut live[i], true) {
                continue;
            }
            for_each_child(&nodes[i], |c| todo.push(index[&node_ptr(c).unwrap()]));
        }
        // The rest is garbage held up by cycles: empty the changeable containers, which breaks
        // every cycle; the values taken out drop after the loop, without recursion.
        let mut garbage: Vec<Value> = Vec::new();
        for (v, _) in nodes.iter().zip(&live).filter(|(_, l)| !**l) {
            match v {
                Value::List(l) | Value::Set(l) => garbage.append(&mut l.borrow_mut()),
                Value::Dict(d) => {
                    for (k, v) in d.borrow_mut().drain(..) {
                        garbage.push(k);
                        garbage.push(v);
                    }
                }
                Value::Object(o) => {
                    let mut o = o.borrow_mut();
                    garbage.push(std::mem::replace(&mut o.callable, Value::None));
                    garbage.push(std::mem::replace(&mut o.args, Value::None));
                    garbage.extend(o.state.take());
                    for (k, v) in o.items.drain(..) {
                        garbage.push(k);
                        garbage.push(v);
                    }
                    garbage.append(&mut o.appended);
                }
                _ => {}
            }
        }
        drop(nodes);
        drop(garbage);
    }
}

/// What the reader found out about one pickle.
#[derive(Debug)]
pub struct Parsed {
    /// The value STOP returned: the top of the stack (a state_dict, a checkpoint dict, …).
    pub value: Value,
    /// Every global the pickle names, once each.
    pub globals: BTreeSet<(String, String)>,
    /// Opcodes that resolve names outside the pickle (extension registry, out-of-band buffers).
    pub opaque: Vec<String>,
    /// Bytes the pickle took, up to and including STOP.
    pub len: usize,
    /// Every persistent id, in the order the pickle loads them (`torch.save` names each storage
    /// this way, with its type and size, whether or not a tensor wraps it).
    pub persistent: Vec<Value>,
    /// Last: breaks what cycles the values above leave once they are dropped (held for its
    /// `Drop` only).
    _cycles: Cycles,
}

crate::error::message_error! {
    /// A pickle that cannot be read (truncated, an unknown opcode, over a limit): one line, without a
    /// file name — the caller names the file and the entry.
    PickleError
}

/// Reads one pickle from the start of `data`.
pub fn parse(data: &[u8]) -> Result<Parsed, PickleError> {
    Machine::new(data).run().map_err(PickleError::from)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<Vec<Value>>,
    memo: std::collections::HashMap<u64, Value>,
    globals: BTreeSet<(String, String)>,
    opaque: Vec<String>,
    persistent: Vec<Value>,
    opcodes: u64,
    /// Last, as in [`Parsed`].
    cycles: Cycles,
}

type R<T> = Result<T, String>;

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Default::default(),
            globals: BTreeSet::new(),
            opaque: Vec::new(),
            persistent: Vec::new(),
            opcodes: 0,
            cycles: Cycles::default(),
        }
    }

    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "pickle truncated: needs {n} bytes at offset {} but {left} remain",
                self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("pickle truncated: unterminated text line")?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| "pickle text line is not UTF-8".to_string())
    }
    fn pop(&mut self) -> R<Value> {
        self.stack
            .pop()
            .ok_or_else(|| format!("pickle stack underflow at offset {}", self.pos))
    }
    fn top(&mut self) -> R<&mut Value> {
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| format!("pickle stack underflow at offset {pos}"))
    }
    fn pop_mark(&mut self) -> R<Vec<Value>> {
        let below = self
            .marks
            .pop()
            .ok_or_else(|| format!("pickle has no MARK for the opcode at offset {}", self.pos))?;
        Ok(std::mem::replace(&mut self.stack, below))
    }
    fn opaque_push(&mut self, what: String) {
        if self.opaque.len() < MAX_OPAQUE && !self.opaque.contains(&what) {
            self.opaque.push(what);
        }
    }
    fn global(&mut self, module: String, name: String) -> Value {
        self.globals.insert((module.clone(), name.clone()));
        Value::Global(Rc::new(Global { module, name }))
    }
    fn object(callable: Value, args: Value) -> Value {
        Value::Object(Rc::new(RefCell::new(Object {
            callable,
            args,
            state: None,
            items: Vec::new(),
            appended: Vec::new(),
        })))
    }
    fn memo_get(&self, key: u64) -> R<Value> {
        self.memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("pickle refers to memo entry {key}, which was never stored"))
    }
    fn memo_put(&mut self, key: u64) -> R<()> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or("pickle memoizes an empty stack")?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn set_items(&mut self, target: &Value, pairs: Vec<(Value, Value)>) -> R<()> {
        self.cycles.note(target);
        match target {
            Value::Dict(d) => d.borrow_mut().extend(pairs),
            Value::Object(o) => o.borrow_mut().items.extend(pairs),
            _ => return Err("pickle sets items on a value that is not a dict".into()),
        }
        Ok(())
    }
    fn append_items(&mut self, target: &Value, items: Vec<Value>) -> R<()> {
        self.cycles.note(target);
        match target {
            Value::List(l) => l.borrow_mut().extend(items),
            Value::Set(s) => s.borrow_mut().extend(items),
            Value::Object(o) => o.borrow_mut().appended.extend(items),
            _ => return Err("pickle appends to a value that is not a list".into()),
        }
        Ok(())
    }

    fn run(mut self) -> R<Parsed> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            self.opcodes += 1;
            if self.opcodes > MAX_OPCODES {
                return Err(format!(
                    "pickle runs more than {MAX_OPCODES} opcodes (at offset {at}), more than any checkpoint needs"
                ));
            }
            if op == b'.' {
                return self.stop();
            }
            self.step(op, at)?;
        }
    }

    /// STOP: the value on the stack is the pickle's, if it nests within [`MAX_DEPTH`].
    fn stop(mut self) -> R<Parsed> {
        let value = self.pop()?;
        if nests_deeper(&value, MAX_DEPTH) {
            return Err(format!(
                "pickle nests containers more than {MAX_DEPTH} levels deep"
            ));
        }
        Ok(Parsed {
            value,
            globals: std::mem::take(&mut self.globals),
            opaque: std::mem::take(&mut self.opaque),
            len: self.pos,
            persistent: std::mem::take(&mut self.persistent),
            _cycles: std::mem::take(&mut self.cycles),
        })
    }

    /// Runs opcode `op` (read at offset `at`), other than STOP, by its family.
    fn step(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'(' | b'0' | b'1' | b'2' => self.stack_op(op, at),
            b'F' | b'I' | b'L' | b'J' | b'K' | b'M' | 0x8a | 0x8b | b'G' | b'N' | 0x88 | 0x89 => {
                self.number(op, at)
            }
            b'S' | b'V' | b'T' | b'X' | b'U' | 0x8c | 0x8d | b'B' | b'C' | 0x8e | 0x96 => {
                self.string(op, at)
            }
            b')' | b't' | 0x85..=0x87 | b']' | b'l' | b'}' | b'd' | 0x8f | 0x91 => {
                self.container(op, at)
            }
            b'a' | b'e' | 0x90 | b's' | b'u' => self.fill(op, at),
            b'c' | b'i' | 0x93 | 0x82..=0x84 => self.global_op(op, at),
            b'o' | b'R' | 0x81 | 0x92 | b'b' => self.call(op, at),
            b'P' | b'Q' => self.persistent_id(op, at),
            b'g' | b'h' | b'j' | b'p' | b'q' | b'r' | 0x94 => self.memo_op(op, at),
            0x80 | 0x95 | 0x97 | 0x98 => self.framing(op, at),
            _ => Err(unknown(op, at)),
        }
    }

    /// MARK, POP, POP_MARK, DUP.
    fn stack_op(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'(' => {
                let below = std::mem::take(&mut self.stack);
                self.marks.push(below);
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.stack.push(v);
            }
            _ => return Err(unknown(op, at)),
        }
        Ok(())
    }

    /// Numbers, booleans and None: FLOAT, INT, LONG, BININT*, LONG1/4, BINFLOAT, NONE,
    /// NEWTRUE, NEWFALSE.
    fn number(&mut self, op: u8, at: usize) -> R<()> {
        let v = match op {
            b'F' => {
                let l = self.line()?;
                let f = l
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("bad FLOAT `{l}`"))?;
                Value::Float(f)
            }
            b'I' => {
                let l = self.line()?.trim();
                match l {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    _ => Value::Int(l.parse().map_err(|_| format!("bad INT `{l}`"))?),
                }
            }
            b'L' => {
                let l = self.line()?.trim().trim_end_matches('L');
                l.parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or_else(|_| Value::Str(l.into()))
            }
            b'J' => Value::Int(self.u32()? as i32 as i64),
            b'K' => Value::Int(self.u8()? as i64),
            b'M' => Value::Int(self.u16()? as i64),
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    self.u8()? as u64
                } else {
                    self.u32()? as i32 as i64 as u64
                };
                if n > i32::MAX as u64 {
                    return Err("LONG4 with a negative length".into());
                }
                long(self.take(n)?)
            }
            b'G' => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().unwrap())),
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            _ => return Err(unknown(op, at)),
        };
        self.stack.push(v);
        Ok(())
    }

    /// Text and bytes: STRING, UNICODE (text lines) and the length-prefixed strings and bytes.
    fn string(&mut self, op: u8, at: usize) -> R<()> {
        let v = match op {
            b'S' => {
                let l = self.line()?;
                let s = l.trim().trim_matches(|c| c == '\'' || c == '"');
                Value::Str(s.into())
            }
            b'V' => Value::Str(self.line()?.into()),
            b'T' | b'X' | b'U' | 0x8c | 0x8d | b'B' | b'C' | 0x8e | 0x96 => {
                let n = match op {
                    b'U' | 0x8c | b'C' => self.u8()? as u64,
                    b'T' | b'X' | b'B' => self.u32()? as u64,
                    _ => self.u64()?,
                };
                let b = self.take(n)?;
                match op {
                    b'X' | 0x8c | 0x8d => Value::Str(
                        std::str::from_utf8(b)
                            .map_err(|_| format!("string at offset {at} is not UTF-8"))?
                            .into(),
                    ),
                    // Protocol 0–2 byte strings are Python 2 `str`: text in practice.
                    b'T' | b'U' => match std::str::from_utf8(b) {
                        Ok(s) => Value::Str(s.into()),
                        Err(_) => Value::Bytes(b.into()),
                    },
                    _ => Value::Bytes(b.into()),
                }
            }
            _ => return Err(unknown(op, at)),
        };
        self.stack.push(v);
        Ok(())
    }

    /// New containers: tuples, lists, dicts and sets, empty or of the items above a mark.
    fn container(&mut self, op: u8, at: usize) -> R<()> {
        let v = match op {
            b')' => Value::Tuple(Rc::new([])),
            b't' => Value::Tuple(self.pop_mark()?.into()),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err(format!("pickle stack underflow at offset {at}"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                Value::Tuple(items.into())
            }
            b']' => Value::List(Default::default()),
            b'l' => Value::List(Rc::new(RefCell::new(self.pop_mark()?))),
            b'}' => Value::Dict(Default::default()),
            b'd' => {
                let items = self.pop_mark()?;
                Value::Dict(Rc::new(RefCell::new(pairs(items)?)))
            }
            0x8f => Value::Set(Default::default()),
            0x91 => Value::Set(Rc::new(RefCell::new(self.pop_mark()?))),
            _ => return Err(unknown(op, at)),
        };
        self.stack.push(v);
        Ok(())
    }

    /// Items added to the container on the stack: APPEND, APPENDS, ADDITEMS, SETITEM, SETITEMS.
    fn fill(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'a' => {
                let v = self.pop()?;
                let target = self.top()?.clone();
                self.append_items(&target, vec![v])
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?.clone();
                self.append_items(&target, items)
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let target = self.top()?.clone();
                self.set_items(&target, vec![(k, v)])
            }
            b'u' => {
                let items = self.pop_mark()?;
                let target = self.top()?.clone();
                self.set_items(&target, pairs(items)?)
            }
            _ => Err(unknown(op, at)),
        }
    }

    /// Names of globals, recorded and never imported: GLOBAL, INST, STACK_GLOBAL, EXT1/2/4.
    fn global_op(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'c' | b'i' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                let g = self.global(module, name);
                if op == b'i' {
                    let args = self.pop_mark()?;
                    self.stack.push(Self::object(g, Value::Tuple(args.into())));
                } else {
                    self.stack.push(g);
                }
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(m), Some(n)) = (module.as_str(), name.as_str()) else {
                    return Err(format!(
                        "STACK_GLOBAL at offset {at} with names that are not strings"
                    ));
                };
                let g = self.global(m.to_string(), n.to_string());
                self.stack.push(g);
            }
            0x82..=0x84 => {
                let code = match op {
                    0x82 => self.u8()? as u32,
                    0x83 => self.u16()? as u32,
                    _ => self.u32()?,
                };
                self.opaque_push(format!(
                    "extension-registry code {code} (an unnamed global)"
                ));
                let g = self.global("copyreg-extension".into(), code.to_string());
                self.stack.push(g);
            }
            _ => return Err(unknown(op, at)),
        }
        Ok(())
    }

    /// Calls, recorded as objects and never made (OBJ, REDUCE, NEWOBJ, NEWOBJ_EX), and BUILD.
    fn call(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(format!("OBJ at offset {at} without a class"));
                }
                let class = items.remove(0);
                self.stack
                    .push(Self::object(class, Value::Tuple(items.into())));
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(Self::object(callable, args));
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.stack
                    .push(Self::object(class, Value::Tuple(Rc::new([args, kwargs]))));
            }
            b'b' => {
                let state = self.pop()?;
                // BUILD on anything but an object would call its __setstate__; the state is
                // kept nowhere since no rebuild function we read needs it.
                let target = self.top()?.clone();
                if let Value::Object(o) = &target {
                    self.cycles.note(&target);
                    o.borrow_mut().state = Some(state);
                }
            }
            _ => return Err(unknown(op, at)),
        }
        Ok(())
    }

    /// PERSID and BINPERSID: a persistent id, recorded (`torch.save` names storages this way).
    fn persistent_id(&mut self, op: u8, at: usize) -> R<()> {
        let pid = match op {
            b'P' => Value::Str(self.line()?.into()),
            b'Q' => self.pop()?,
            _ => return Err(unknown(op, at)),
        };
        self.persistent.push(pid.clone());
        self.stack.push(Value::Persistent(Rc::new(pid)));
        Ok(())
    }

    /// The memo: GET, BINGET, LONG_BINGET push an entry; PUT, BINPUT, LONG_BINPUT, MEMOIZE store
    /// the top of the stack.
    fn memo_op(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            b'g' | b'h' | b'j' => {
                let k = match op {
                    b'g' => self
                        .line()?
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| "bad GET index")?,
                    b'h' => self.u8()? as u64,
                    _ => self.u32()? as u64,
                };
                let v = self.memo_get(k)?;
                self.stack.push(v);
                Ok(())
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let k = match op {
                    b'p' => self
                        .line()?
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| "bad PUT index")?,
                    b'q' => self.u8()? as u64,
                    b'r' => self.u32()? as u64,
                    _ => self.memo.len() as u64,
                };
                self.memo_put(k)
            }
            _ => Err(unknown(op, at)),
        }
    }

    /// PROTO, FRAME, NEXT_BUFFER, READONLY_BUFFER: protocol framing and out-of-band buffers.
    fn framing(&mut self, op: u8, at: usize) -> R<()> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(format!(
                        "pickle protocol {proto} is not supported (0–5 are)"
                    ));
                }
            }
            0x95 => {
                self.u64()?;
            }
            0x97 => {
                self.opaque_push("out-of-band buffer (NEXT_BUFFER)".into());
                self.stack.push(Value::None);
            }
            0x98 => {}
            _ => return Err(unknown(op, at)),
        }
        Ok(())
    }
}

/// The error for an opcode that no protocol defines.
fn unknown(op: u8, at: usize) -> String {
    format!("unknown pickle opcode 0x{op:02x} at offset {at}")
}

fn pairs(items: Vec<Value>) -> R<Vec<(Value, Value)>> {
    if items.len() % 2 != 0 {
        return Err("pickle dict with an odd number of items".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// A little-endian two's-complement integer of LONG1/LONG4.
fn long(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() <= 8 {
        let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut buf = [fill; 8];
        buf[..b.len()].copy_from_slice(b);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(b.into())
    }
}

/// Modules whose globals run code, touch files or reach the network, and what they do.
const DANGEROUS_MODULES: &[(&str, &str)] = &[
    ("os", "runs system commands and touches files"),
    ("posix", "runs system commands and touches files"),
    ("nt", "runs system commands and touches files"),
    ("subprocess", "runs programs"),
    ("pty", "spawns a shell"),
    ("socket", "opens network connections"),
    ("runpy", "runs Python code"),
    ("shutil", "moves and deletes files"),
    ("sys", "reaches the interpreter"),
    ("importlib", "imports arbitrary modules"),
    ("pickle", "loads a nested pickle without checks"),
    ("_pickle", "loads a nested pickle without checks"),
    ("cPickle", "loads a nested pickle without checks"),
    ("dill", "loads arbitrary code"),
    ("marshal", "loads bytecode"),
    ("ctypes", "calls native code"),
    ("webbrowser", "opens URLs"),
    ("code", "runs Python code"),
    ("codeop", "compiles Python code"),
    ("timeit", "runs Python code"),
    ("pdb", "runs Python code"),
    ("bdb", "runs Python code"),
    ("trace", "runs Python code"),
    ("profile", "runs Python code"),
    ("cProfile", "runs Python code"),
    ("commands", "runs system commands"),
    ("popen2", "runs system commands"),
    ("platform", "runs system commands"),
    ("multiprocessing", "starts processes"),
    ("asyncio", "runs programs and opens connections"),
    ("urllib", "opens network connections"),
    ("http", "opens network connections"),
    ("requests", "opens network connections"),
    ("ftplib", "opens network connections"),
    ("smtplib", "opens network connections"),
    ("telnetlib", "opens network connections"),
    ("tempfile", "creates files"),
    ("types", "builds functions from code objects"),
    ("numpy.testing", "runs Python code"),
    ("torch.hub", "downloads and runs code"),
];

/// Functions outside the dangerous modules that call other functions on the file's behalf.
const DANGEROUS_FNS: &[(&str, &str)] = &[
    ("functools", "partial"),
    ("functools", "reduce"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("operator", "call"),
    ("operator", "getitem"),
    ("numpy", "load"),
    ("numpy.lib.npyio", "load"),
    ("torch", "load"),
    ("torch.serialization", "load"),
];

/// How a global would behave if Python unpickled the file.
pub fn judge(module: &str, name: &str, torchscript: bool) -> (Risk, Option<&'static str>) {
    let in_module = |m: &str| module == m || module.starts_with(&format!("{m}."));
    for (m, why) in DANGEROUS_MODULES {
        if in_module(m) {
            return (Risk::Dangerous, Some(why));
        }
    }
    if module == "builtins" || module == "__builtin__" {
        return judge_builtin(name);
    }
    if DANGEROUS_FNS
        .iter()
        .any(|(m, n)| module == *m && name == *n)
    {
        return (
            Risk::Dangerous,
            Some("calls other functions on the file's behalf"),
        );
    }
    if rebuilds_data(module, name, torchscript) {
        (Risk::None, None)
    } else {
        (Risk::Suspicious, None)
    }
}

/// How a builtin would behave: code-running and attribute-reaching ones are dangerous, plain
/// constructors safe, the rest suspicious.
fn judge_builtin(name: &str) -> (Risk, Option<&'static str>) {
    match name {
        "eval" | "exec" | "execfile" | "compile" | "__import__" | "open" | "input"
        | "breakpoint" | "globals" | "locals" | "vars" | "apply" | "memoryview" => {
            (Risk::Dangerous, Some("runs Python code or touches files"))
        }
        "getattr" | "setattr" | "delattr" => (
            Risk::Dangerous,
            Some("reaches any attribute, such as os.system"),
        ),
        "set" | "frozenset" | "bytearray" | "dict" | "list" | "tuple" | "int" | "float"
        | "complex" | "bool" | "str" | "bytes" | "slice" | "range" | "object" => (Risk::None, None),
        _ => (Risk::Suspicious, None),
    }
}

/// Whether a global is one of the torch/numpy/collections functions that rebuild tensors,
/// storages and containers (and, in a TorchScript archive, its own classes).
fn rebuilds_data(module: &str, name: &str, torchscript: bool) -> bool {
    match module {
        "torch._utils" => name.starts_with("_rebuild_"),
        "torch" => {
            name.ends_with("Storage")
                || name == "Size"
                || name == "device"
                || name == "Tensor"
                || dtype_name(name)
        }
        "torch.storage" => name == "UntypedStorage" || name == "TypedStorage",
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "collections" => name == "OrderedDict" || name == "defaultdict",
        "copyreg" | "copy_reg" => name == "_reconstructor",
        "_codecs" => name == "encode",
        "numpy.core.multiarray" | "numpy._core.multiarray" => {
            name == "_reconstruct" || name == "scalar"
        }
        "numpy" => name == "ndarray" || name == "dtype",
        "numpy.dtypes" => name.ends_with("DType"),
        "torch.jit._pickle" => torchscript,
        _ => torchscript && (module == "__torch__" || module.starts_with("__torch__.")),
    }
}

fn dtype_name(name: &str) -> bool {
    super::dtype::torch(name).is_some() && !name.ends_with("Storage")
}

/// Findings and the worst risk for a set of globals (and opaque opcodes).
pub fn findings(parsed: &Parsed, torchscript: bool, origin: &str) -> (Risk, Vec<String>) {
    let mut risk = Risk::None;
    let mut out = Vec::new();
    for (module, name) in &parsed.globals {
        if module == "copyreg-extension" {
            continue;
        }
        let (r, why) = judge(module, name, torchscript);
        risk = risk.max(r);
        match r {
            Risk::Dangerous => out.push(format!(
                "{origin}: dangerous global `{module}.{name}` ({}): loading this file in Python would run it",
                why.unwrap_or("runs code")
            )),
            Risk::Suspicious => out.push(format!(
                "{origin}: suspicious global `{module}.{name}`: not a tensor-rebuild function; Python would import and call it (torch.load(weights_only=True) refuses it)"
            )),
            Risk::None => {}
        }
    }
    for o in &parsed.opaque {
        risk = risk.max(Risk::Suspicious);
        out.push(format!(
            "{origin}: {o} cannot be resolved without running Python"
        ));
    }
    (risk, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_protocol_2_dict_without_calling_anything() {
        // {'a': 1, 'b': [True, None]} with a GLOBAL os.system REDUCE as a value.
        let mut p =
            b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00b]q\x01(\x88Ne".to_vec();
        p.extend_from_slice(b"X\x01\x00\x00\x00ccos\nsystem\nX\x04\x00\x00\x00echo\x85Ru.");
        let parsed = parse(&p).unwrap();
        assert!(parsed
            .globals
            .contains(&("os".to_string(), "system".to_string())));
        let Value::Dict(d) = &parsed.value else {
            panic!("not a dict")
        };
        let d = d.borrow();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].1.as_int(), Some(1));
        let (risk, findings) = findings(&parse(&p).unwrap(), false, "x");
        assert_eq!(risk, Risk::Dangerous);
        assert!(findings[0].contains("os.system"));
    }

    #[test]
    fn stack_global_behind_memo_is_seen() {
        // 'builtins' and 'exec' memoized, then fetched back and joined by STACK_GLOBAL.
        let p = b"\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94h\x00h\x01\x93\x8c\x01x\x85R.";
        let parsed = parse(p).unwrap();
        assert!(parsed
            .globals
            .contains(&("builtins".to_string(), "exec".to_string())));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for p in [
            &b"\x80\x02"[..],
            b"(t",
            b"0",
            b"\x93.",
            b"h\x05.",
            b"X\xff\xff\xff\xff",
            b"\x8b\xff\xff\xff\xff",
        ] {
            assert!(parse(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn containers_put_into_themselves_are_freed() {
        // A list in itself (APPEND), a dict in itself (SETITEM), an object as its own state
        // (BUILD), and a list in a tuple in itself: each a cycle of `Rc`s.
        let weak = |v: &Value| match v {
            Value::List(l) => Rc::downgrade(l),
            _ => panic!("not a list: {v:?}"),
        };
        for p in [&b"\x80\x02]q\x00h\x00a."[..], b"\x80\x02]q\x00h\x00\x85a."] {
            let parsed = parse(p).unwrap();
            let w = weak(&parsed.value);
            assert_eq!(w.upgrade().unwrap().borrow().len(), 1);
            drop(parsed);
            assert!(w.upgrade().is_none(), "{p:?} leaked");
        }
        let parsed = parse(b"\x80\x02}q\x00X\x01\x00\x00\x00kh\x00s.").unwrap();
        let Value::Dict(d) = &parsed.value else {
            panic!()
        };
        let w = Rc::downgrade(d);
        drop(parsed);
        assert!(w.upgrade().is_none(), "dict leaked");
        let parsed = parse(b"\x80\x02c__main__\nC\n)\x81q\x00h\x00b.").unwrap();
        let Value::Object(o) = &parsed.value else {
            panic!()
        };
        assert!(o.borrow().state.is_some());
        let w = Rc::downgrade(o);
        drop(parsed);
        assert!(w.upgrade().is_none(), "object leaked");
    }

    #[test]
    fn a_cycle_still_held_from_outside_is_left_whole() {
        let parsed = parse(b"\x80\x02]q\x00h\x00a.").unwrap();
        let kept = parsed.value.clone();
        drop(parsed);
        let Value::List(l) = &kept else { panic!() };
        assert_eq!(l.borrow().len(), 1);
        // Break it here, as its holder must.
        l.borrow_mut().clear();
    }

    #[test]
    fn lists_built_by_append_a_million_deep_drop_without_recursion() {
        // Python's pickler builds every list as EMPTY_LIST then APPEND(S), so lists are changed
        // after they are made; dropping them must not recurse either.
        let n = 1_000_000;
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', n));
        p.extend(std::iter::repeat_n(b'a', n - 1));
        p.push(b'.');
        assert!(parse(&p).unwrap_err().0.contains("levels deep"));
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', MAX_DEPTH));
        p.extend(std::iter::repeat_n(b'a', MAX_DEPTH - 1));
        p.push(b'.');
        drop(parse(&p).unwrap());
    }

    #[test]
    fn nesting_is_bounded_and_never_recursed() {
        // Just under the limit parses (and drops without recursion); one level more is refused.
        let nested = |n: usize| {
            let mut p = b"\x80\x02)".to_vec();
            p.extend(std::iter::repeat_n(0x85u8, n));
            p.push(b'.');
            p
        };
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let err = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.0.contains("levels deep"), "{err}");
        // A value built a million levels deep and dropped on an error path (no STOP).
        let mut p = b"\x80\x02)".to_vec();
        p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
        assert!(parse(&p).is_err());
        // A list that holds itself is one level, not a loop.
        let parsed = parse(b"\x80\x02]q\x00h\x00a.").unwrap();
        let Value::List(l) = &parsed.value else {
            panic!("not a list")
        };
        assert_eq!(l.borrow().len(), 1);
    }

    #[test]
    fn persistent_ids_are_listed_in_order() {
        let p = b"\x80\x02(X\x01\x00\x00\x00aQX\x01\x00\x00\x00bQl.";
        let parsed = parse(p).unwrap();
        let keys: Vec<_> = parsed.persistent.iter().map(|v| v.key_text()).collect();
        assert_eq!(keys, [Some("a".to_string()), Some("b".to_string())]);
    }

    #[test]
    fn long_integers_decode_with_sign() {
        assert_eq!(long(&[0xff]).as_int(), Some(-1));
        assert_eq!(long(&[0x00, 0x01]).as_int(), Some(256));
    }
}

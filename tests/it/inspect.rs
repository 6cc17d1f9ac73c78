//! `cargo infer inspect` against every fixture, compared with what the generator wrote
//! (`fixtures/expected.json`), and against every kind of bad input.

use std::path::Path;

use serde_json::Value;

use crate::common::{cargo_infer, fixtures, one_line_error};

fn expected() -> serde_json::Map<String, Value> {
    let text =
        std::fs::read_to_string(fixtures().join("expected.json")).expect("fixtures/expected.json");
    serde_json::from_str(&text).unwrap()
}

fn inspect_json(path: &Path) -> Value {
    let out = cargo_infer()
        .args(["inspect", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fields every fixture entry may state; each is compared when the generator wrote it.
#[test]
fn every_fixture_reads_as_the_generator_wrote_it() {
    let mut checked = 0;
    for (name, want) in expected() {
        if want.get("error").is_some() {
            continue;
        }
        let got = inspect_json(&fixtures().join(&name));
        let ctx = |field: &str| format!("{name}: field `{field}`");
        for field in [
            "format",
            "inputs",
            "outputs",
            "operators",
            "opsets",
            "tensor_count",
            "parameters",
            "weight_bytes",
        ] {
            if let Some(w) = want.get(field) {
                assert_eq!(&got[field], w, "{}", ctx(field));
            }
        }
        if let Some(w) = want.get("metadata").filter(|m| !m.is_null()) {
            assert_eq!(&got["metadata"], w, "{}", ctx("metadata"));
        }
        if let Some(w) = want.get("architecture") {
            assert_eq!(
                &got["architecture"]["class"],
                w,
                "{}",
                ctx("architecture.class")
            );
            assert!(
                !got["architecture"]["reasons"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "{}",
                ctx("architecture.reasons")
            );
        }
        assert_eq!(
            &got["safety"]["verdict"],
            &want["safety"],
            "{}",
            ctx("safety")
        );
        for (field, key) in [
            ("custom_domains", "custom_domains"),
            ("state_dict_key", "state_dict_key"),
            ("signature", "signature"),
        ] {
            if let Some(w) = want.get(field) {
                let g = &got[key];
                if field == "signature" {
                    // The archive spells the receiver's type; the argument list is what matters.
                    assert!(
                        g.as_str().unwrap().contains("x: Tensor) -> Tensor"),
                        "{}: {g}",
                        ctx(field)
                    );
                } else {
                    assert_eq!(g, w, "{}", ctx(field));
                }
            }
        }
        if let Some(w) = want.get("external_data") {
            let files: Vec<&Value> = got["external_data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| &f["file"])
                .collect();
            assert_eq!(
                files,
                w.as_array().unwrap().iter().collect::<Vec<_>>(),
                "{}",
                ctx("external_data")
            );
            assert!(got["external_data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["exists"] == true));
        }
        let tensors = got["tensors"].as_array().unwrap();
        if let Some(w) = want.get("tensor_names") {
            let mut names: Vec<&str> = tensors
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            let mut want: Vec<&str> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            names.sort();
            want.sort();
            assert_eq!(names, want, "{}", ctx("tensors"));
        }
        if let Some(w) = want.get("tensors") {
            for (tname, t) in w.as_object().unwrap() {
                let g = tensors
                    .iter()
                    .find(|g| g["name"] == tname.as_str())
                    .unwrap_or_else(|| panic!("{}: no {tname}", ctx("tensors")));
                assert_eq!(g["shape"], t["shape"], "{}: {tname}", ctx("tensors"));
                assert_eq!(g["dtype"], t["dtype"], "{}: {tname}", ctx("tensors"));
            }
        }
        if let Some(w) = want.get("sizes") {
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&got["sizes"][k], v, "{}: {k}", ctx("sizes"));
            }
        }
        if let Some(w) = want.get("metadata_keys") {
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&got["metadata"][k], v, "{}: {k}", ctx("metadata"));
            }
        }
        if let Some(w) = want.get("dangerous") {
            let findings = got["safety"]["findings"].to_string();
            for g in w.as_array().unwrap() {
                assert!(
                    findings.contains(g.as_str().unwrap()),
                    "{}: {findings}",
                    ctx("findings")
                );
            }
        } else {
            assert_eq!(
                got["safety"]["findings"],
                serde_json::json!([]),
                "{}",
                ctx("findings")
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures checked");
}

#[test]
fn bad_files_are_one_line_errors_with_exit_2() {
    let mut checked = 0;
    for (name, want) in expected() {
        let Some(phrase) = want.get("error").and_then(Value::as_str) else {
            continue;
        };
        let path = fixtures().join(&name);
        let out = cargo_infer().arg("inspect").arg(&path).output().unwrap();
        assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
        let err = one_line_error(&out, &name);
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: does not name the file: {err}"
        );
        assert!(err.contains(phrase), "{name}: `{err}` lacks `{phrase}`");
        checked += 1;
    }
    assert!(checked >= 8);
}

#[test]
fn missing_file_and_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (path, phrase) in [
        (dir.path().join("nope.onnx"), "no such file"),
        (dir.path().to_path_buf(), "holds no model"),
    ] {
        let out = cargo_infer().arg("inspect").arg(&path).output().unwrap();
        let err = one_line_error(&out, &path.display().to_string());
        assert!(
            err.contains(&path.display().to_string()) && err.contains(phrase),
            "{err}"
        );
    }
}

/// Every regular fixture, cut at many offsets: each cut is an error that names the file, or — for
/// ONNX only, whose top-level fields may end exactly at the cut — a reading that lost nothing but
/// trailing metadata. Never a panic.
#[test]
fn truncations_at_many_offsets_never_panic_and_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cuts = 0;
    for (name, want) in expected() {
        let src = fixtures().join(&name);
        if want.get("error").is_some() || !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).unwrap();
        let full = cargo_infer::model::inspect(&src).unwrap();
        let target = dir.path().join(src.file_name().unwrap());
        // Keep the siblings a model refers to (external data, shards) next to the cut copy.
        for sib in std::fs::read_dir(src.parent().unwrap()).unwrap() {
            let sib = sib.unwrap().path();
            if sib.is_file() && sib != src {
                std::fs::copy(&sib, dir.path().join(sib.file_name().unwrap())).unwrap();
            }
        }
        let mut offsets: Vec<usize> = (0..bytes.len().min(64)).collect();
        let step = (bytes.len() / 97).max(1);
        offsets.extend((64..bytes.len()).step_by(step));
        offsets.push(bytes.len() - 1);
        for &at in &offsets {
            std::fs::write(&target, &bytes[..at]).unwrap();
            match cargo_infer::model::inspect(&target) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&target.display().to_string()),
                        "{name}@{at}: {msg}"
                    );
                    assert_eq!(msg.lines().count(), 1, "{name}@{at}: {msg}");
                }
                Ok(info) => {
                    assert_eq!(
                        info.format,
                        cargo_infer::model::Format::Onnx,
                        "{name} cut at {at} of {} read as valid",
                        bytes.len()
                    );
                    assert_eq!(
                        (&info.inputs, &info.outputs, &info.operators, &info.tensors),
                        (&full.inputs, &full.outputs, &full.operators, &full.tensors),
                        "{name} cut at {at} read as a different model"
                    );
                }
            }
            cuts += 1;
        }
        for sib in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(sib.unwrap().path()).unwrap();
        }
    }
    assert!(cuts > 1000, "{cuts}");
}

/// Flipped bytes anywhere in every fixture: a reading or an error, never a panic or a hang.
#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, want) in expected() {
        let src = fixtures().join(&name);
        if want.get("error").is_some() || !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).unwrap();
        let target = dir.path().join(src.file_name().unwrap());
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            std::fs::write(&target, &b).unwrap();
            if let Err(e) = cargo_infer::model::inspect(&target) {
                assert_eq!(e.to_string().lines().count(), 1, "{name}: {e}");
            }
        }
    }
}

#[test]
fn malicious_pickles_are_reported_and_never_run() {
    let marker = Path::new(crate::common::PWNED);
    let _ = std::fs::remove_file(marker);
    for name in crate::common::MALICIOUS {
        let got = inspect_json(&fixtures().join(name));
        assert_eq!(got["safety"]["verdict"], "unsafe", "{name}");
        assert_eq!(got["safety"]["risk"], "dangerous", "{name}");
        // The human summary says so too, and the exit code is 0: inspect reports, it does not judge.
        let out = cargo_infer()
            .args(["inspect", "--color", "never"])
            .arg(fixtures().join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("UNSAFE"),
            "{name}"
        );
    }
    assert!(!marker.exists(), "a payload ran");
}

#[test]
fn runs_as_a_cargo_subcommand_and_directly() {
    let model = fixtures().join("mlp.onnx");
    for args in [vec!["infer", "inspect"], vec!["inspect"]] {
        let out = cargo_infer()
            .args(&args)
            .arg(&model)
            .args(["--color", "never"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("ONNX model")
                && text.contains("[batch, 4]")
                && text.contains("class  mlp"),
            "{text}"
        );
    }
    // `--message-format` is the same flag as `--format`.
    let out = cargo_infer()
        .args(["inspect", "--message-format", "json"])
        .arg(&model)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "onnx");
}

#[test]
fn format_comes_from_bytes_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (src, disguise, format) in [
        ("mlp.onnx", "model.bin", "onnx"),
        ("mlp.safetensors", "weights.onnx", "safetensors"),
        ("tiny-llama.gguf", "model.pt", "gguf"),
        ("state_dict.pt", "model.safetensors", "pytorch"),
    ] {
        let p = dir.path().join(disguise);
        std::fs::copy(fixtures().join(src), &p).unwrap();
        assert_eq!(inspect_json(&p)["format"], format, "{src} as {disguise}");
    }
}

#[test]
fn help_shows_an_example_for_every_command() {
    let out = cargo_infer().args(["inspect", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cargo infer inspect model.onnx"));
}

#[test]
fn missing_external_data_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mlp_external.onnx");
    std::fs::copy(fixtures().join("mlp_external.onnx"), &p).unwrap();
    let got = inspect_json(&p);
    assert_eq!(
        got["external_data"],
        serde_json::json!([{"file": "mlp_external.onnx.data", "exists": false}])
    );
    assert_eq!(got["parameters"], 1410);
    let out = cargo_infer()
        .args(["inspect", "--color", "never"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("mlp_external.onnx.data (MISSING)"));
}

// PyTorch files that real tools write and that were refused, and hostile ones that must be refused
// in bounded time and memory (issue 13).

/// Runs cargo-infer with its address space limited to `mib` MiB and a 120 s deadline: a reader
/// that allocated without bound, or recursed a million levels, dies instead of exiting 2.
fn cargo_infer_bounded(mib: u64, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("cargo-infer");
    let start = std::time::Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", mib * 1024))
        .arg(bin)
        .args(args)
        .env("CARGO_INFER_NO_CACHE", "1")
        .output()
        .unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
    out
}

/// Asserts a bounded run was refused with one line naming `path` and containing `phrase`.
fn refused(out: &std::process::Output, path: &Path, phrase: &str) {
    let err = one_line_error(out, &path.display().to_string());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains(phrase),
        "{}: `{err}` lacks `{phrase}`",
        path.display()
    );
}

fn inspect_bounded(mib: u64, path: &Path) -> std::process::Output {
    cargo_infer_bounded(mib, &["inspect".as_ref(), path.as_os_str()])
}

/// The tensors `inspect --format json` lists, as name → (dtype, shape).
fn tensor_table(v: &Value) -> std::collections::BTreeMap<String, (String, Vec<u64>)> {
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (
                t["name"].as_str().unwrap().to_string(),
                (t["dtype"].as_str().unwrap().to_string(), shape),
            )
        })
        .collect()
}

/// The end-of-central-directory record of a zip (the last one).
fn eocd_at(zip: &[u8]) -> usize {
    zip.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap()
}

#[test]
fn a_recent_torch_zip_with_zip64_records_reads_as_torch_wrote_it() {
    // torch 2.13's archive: data descriptors, version-needed 0, a ZIP64 end record and locator
    // before the end record, .storage_alignment, .data/serialization_id, and a first central
    // header exactly as long as the ZIP64 record and locator (the zip crate's offset guess landed
    // on the second header: "Invalid Central Directory header").
    let src = fixtures().join("torch213_zip64.pt");
    let bytes = std::fs::read(&src).unwrap();
    let eocd = eocd_at(&bytes);
    assert_eq!(&bytes[eocd - 20..eocd - 16], b"PK\x06\x07");
    assert_eq!(&bytes[eocd - 76..eocd - 72], b"PK\x06\x06");
    let cd = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let first_name = u16::from_le_bytes(bytes[cd + 28..cd + 30].try_into().unwrap()) as usize;
    assert_eq!(
        46 + first_name,
        76,
        "the first central header is 76 bytes long"
    );

    let want = &expected()["torch213_zip64.pt"];
    let want_tensors: std::collections::BTreeMap<String, (String, Vec<u64>)> = want["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| {
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (k.clone(), (t["dtype"].as_str().unwrap().to_string(), shape))
        })
        .collect();
    let got = inspect_json(&src);
    assert_eq!(tensor_table(&got), want_tensors);
    assert_eq!(got["weight_bytes"], want["weight_bytes"]);

    // The same archive with its end record saying "see the ZIP64 record" (0xffff entries,
    // 0xffffffff size and offset), as archives of more than 65535 entries or 4 GB have it.
    let dir = tempfile::tempdir().unwrap();
    let mut zip64 = bytes.clone();
    zip64[eocd + 8..eocd + 12].copy_from_slice(&[0xff; 4]);
    zip64[eocd + 12..eocd + 20].copy_from_slice(&[0xff; 8]);
    let p = dir.path().join("zip64-end.pt");
    std::fs::write(&p, &zip64).unwrap();
    assert_eq!(tensor_table(&inspect_json(&p)), want_tensors);
}

#[test]
fn a_legacy_stream_whose_storages_follow_the_key_list_reads() {
    // torch 0.4 on Windows: storages in the (text-sorted) key list's order, not the tensors'; a
    // float32 and two float64 storages, one behind a Parameter pickled as a call of the class.
    let src = fixtures().join("legacy_keys_order.pt");
    let got = inspect_json(&src);
    let table = tensor_table(&got);
    let want = [
        ("fc1.bias", "float32", vec![16]),
        ("fc1.weight", "float32", vec![16, 4]),
        ("fc2.bias", "float64", vec![3]),
        ("fc2.weight", "float64", vec![3, 16]),
    ];
    assert_eq!(
        table,
        want.iter()
            .map(|(n, d, s)| (n.to_string(), (d.to_string(), s.clone())))
            .collect()
    );
    assert_eq!(got["weight_bytes"], 728);
    assert_eq!(got["state_dict_key"], "state_dict");
}

/// A torch.save stream's three leading pickles: magic number, protocol version, system info.
const LEGACY_HEAD: &[u8] =
    b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00.";

#[test]
fn deeply_nested_pickles_are_one_line_errors_in_bounded_memory() {
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    // A million nested 1-tuples; a million MARKs closed by a million LISTs; a million empty lists
    // appended each to the one below.
    let mut tuples = b"\x80\x02)".to_vec();
    tuples.extend(std::iter::repeat_n(0x85u8, N));
    tuples.push(b'.');
    let mut marks = b"\x80\x02".to_vec();
    marks.extend(std::iter::repeat_n(b'(', N));
    marks.extend(std::iter::repeat_n(b'l', N));
    marks.push(b'.');
    let mut appends = b"\x80\x02".to_vec();
    appends.extend(std::iter::repeat_n(b']', N));
    appends.extend(std::iter::repeat_n(b'a', N - 1));
    appends.push(b'.');
    let mut legacy = LEGACY_HEAD.to_vec();
    legacy.extend_from_slice(&tuples);
    legacy.extend_from_slice(b"\x80\x02].");
    let zip = torch_zip(&[("archive/data.pkl", Entry::stored(tuples.clone()))]);
    for (name, bytes) in [
        ("tuples.pkl", &tuples),
        ("marks.pkl", &marks),
        ("appends.pkl", &appends),
        ("legacy.pt", &legacy),
        ("zip.pt", &zip),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        refused(&inspect_bounded(1024, &p), &p, "levels deep");
    }
}

#[test]
fn a_pickle_that_runs_too_many_opcodes_is_refused() {
    // An empty list duplicated ten million times: 24 bytes of memory per byte of pickle.
    let dir = tempfile::tempdir().unwrap();
    let mut p = b"\x80\x02]".to_vec();
    p.extend(std::iter::repeat_n(b'2', 10_500_000));
    p.push(b'.');
    let path = dir.path().join("dups.pkl");
    std::fs::write(&path, &p).unwrap();
    refused(&inspect_bounded(2048, &path), &path, "opcodes");
}

/// A zip entry as the hostile tests write it: its bytes, how it is compressed, and the sizes and
/// checksum its headers declare (which may lie).
struct Entry {
    data: Vec<u8>,
    method: u16,
    size: u64,
    crc: u32,
}

impl Entry {
    fn stored(data: Vec<u8>) -> Entry {
        Entry {
            size: data.len() as u64,
            crc: crc32(&data),
            data,
            method: 0,
        }
    }
    /// A raw deflate stream that inflates to `inflates` zero bytes, declaring `size`.
    fn zeros(inflates: u64, size: u64) -> Entry {
        Entry {
            data: deflate_zeros(inflates),
            method: 8,
            size,
            crc: 0,
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// One fixed-Huffman deflate block: a literal zero, then 258-byte copies of distance 1 (13 bits
/// each, deflate's best ratio), then literal zeros for the rest.
fn deflate_zeros(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut put = |v: u64, n: u32, out: &mut Vec<u8>| {
        acc |= v << bits;
        bits += n;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    // Huffman codes go most significant bit first.
    let code = |c: u64, n: u32| (c.reverse_bits() >> (64 - n), n);
    put(1, 1, &mut out); // final block
    put(1, 2, &mut out); // fixed Huffman codes
    let (lit0, lit_n) = code(0x30, 8);
    let (len258, len_n) = code(0xc5, 8);
    let mut left = n;
    if left > 0 {
        put(lit0, lit_n, &mut out);
        left -= 1;
    }
    while left >= 258 {
        put(len258, len_n, &mut out);
        put(0, 5, &mut out); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        put(lit0, lit_n, &mut out);
    }
    put(0, 7, &mut out); // end of block
    put(0, 7, &mut out); // flush
    out
}

/// A zip archive with these entries, sizes and checksums as declared (no ZIP64 fields).
fn torch_zip(entries: &[(&str, Entry)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, e) in entries {
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&e.method.to_le_bytes());
            h.extend_from_slice(&[0, 0, 0x21, 0]);
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(e.size as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                // Comment length, disk, internal and external attributes.
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(&e.data);
        central.extend(header(0x0201_4b50, true));
    }
    let cd = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out
}

/// data.pkl of `{'w': float32 tensor of `numel` elements in storage '0'}`, protocol 2.
fn one_tensor_pickle(numel: u32) -> Vec<u8> {
    let mut p = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ".to_vec();
    p.extend_from_slice(&numel.to_le_bytes());
    p.extend_from_slice(b"tQK\x00J");
    p.extend_from_slice(&numel.to_le_bytes());
    p.extend_from_slice(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.");
    p
}

#[test]
fn zip_bombs_are_refused_without_inflating_them() {
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let pkl = "archive/data.pkl";
    let store = "archive/data/0";
    let ok_pickle = || Entry::stored(one_tensor_pickle(16));
    // (file, its entries, what the refusal says)
    type Case<'a> = (&'a str, Vec<(&'a str, Entry)>, &'a str);
    let cases: Vec<Case> = vec![
        // data.pkl really inflates to 1 GiB and says so.
        (
            "honest-pickle-bomb.pt",
            vec![(pkl, Entry::zeros(GIB, GIB))],
            "more than the",
        ),
        // data.pkl says 200 bytes but inflates to 1 GiB.
        (
            "lying-pickle.pt",
            vec![(pkl, Entry::zeros(GIB, 200))],
            "declared",
        ),
        // data.pkl claims 3.9 GB from a few bytes: more than deflate can expand.
        (
            "impossible-pickle.pt",
            vec![(pkl, Entry::zeros(1000, 3_900_000_000))],
            "more than deflate can",
        ),
        // A storage claiming 3.9 GB from a few bytes, which a tensor of 975M floats "uses".
        (
            "impossible-storage.pt",
            vec![
                (pkl, Entry::stored(one_tensor_pickle(975_000_000))),
                (store, Entry::zeros(1000, 3_900_000_000)),
            ],
            "more than deflate can",
        ),
        // A stored storage claiming more bytes than the file has.
        (
            "short-storage.pt",
            vec![
                (pkl, ok_pickle()),
                (
                    store,
                    Entry {
                        data: vec![0; 64],
                        method: 0,
                        size: 64,
                        crc: 0,
                    },
                ),
            ],
            "past the end of the file",
        ),
    ];
    for (name, entries, phrase) in cases {
        let p = dir.path().join(name);
        let mut bytes = torch_zip(&entries);
        if name == "short-storage.pt" {
            // Declare 64 MB of stored data in both headers' size fields.
            let huge = 64_000_000u32.to_le_bytes();
            let local = bytes.windows(4).rposition(|w| w == b"PK\x03\x04").unwrap();
            bytes[local + 18..local + 22].copy_from_slice(&huge);
            bytes[local + 22..local + 26].copy_from_slice(&huge);
            let central = bytes.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
            bytes[central + 20..central + 24].copy_from_slice(&huge);
            bytes[central + 24..central + 28].copy_from_slice(&huge);
        }
        std::fs::write(&p, &bytes).unwrap();
        refused(&inspect_bounded(1024, &p), &p, phrase);
        let out = dir.path().join("out.safetensors");
        let o = cargo_infer_bounded(1024, &["convert".as_ref(), p.as_os_str(), out.as_os_str()]);
        refused(&o, &p, phrase);
        assert!(!out.exists());
    }
}

#[test]
fn convert_inflates_only_what_the_tensors_need() {
    // A storage that honestly inflates to 1 GiB of which the tensor uses 64 bytes; and one that
    // declares the 64 bytes the tensor needs but inflates to 1 GiB.
    let dir = tempfile::tempdir().unwrap();
    let pkl = ("archive/data.pkl", Entry::stored(one_tensor_pickle(16)));
    let honest = torch_zip(&[
        ("archive/data.pkl", Entry::stored(one_tensor_pickle(16))),
        ("archive/data/0", Entry::zeros(1 << 30, 1 << 30)),
    ]);
    let lying = torch_zip(&[pkl, ("archive/data/0", Entry::zeros(1 << 30, 64))]);
    let p = dir.path().join("big-storage.pt");
    std::fs::write(&p, honest).unwrap();
    let out = dir.path().join("out.safetensors");
    let o = cargo_infer_bounded(512, &["convert".as_ref(), p.as_os_str(), out.as_os_str()]);
    crate::common::assert_success(&o, "big-storage.pt");
    let p = dir.path().join("lying-storage.pt");
    std::fs::write(&p, lying).unwrap();
    let out = dir.path().join("out2.safetensors");
    let o = cargo_infer_bounded(512, &["convert".as_ref(), p.as_os_str(), out.as_os_str()]);
    refused(&o, &p, "declared");
}

/// `--graph`: a thousand-node model of a hundred identical blocks draws as its first block, one
/// box for the other ninety-nine, and what follows; shapes on the edges that the file states.
/// SVG and DOT alike; anything but ONNX, or another extension, is refused and nothing written.
#[test]
fn graph_pictures_fold_repeated_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("graph/repeated.onnx");
    let (svg, dot) = (dir.path().join("g.svg"), dir.path().join("g.dot"));
    for out in [&svg, &dot] {
        cargo_infer()
            .arg("inspect")
            .arg(&model)
            .arg("--graph")
            .arg(out)
            .assert()
            .success();
    }
    let text = std::fs::read_to_string(&dot).unwrap();
    assert!(text.starts_with("digraph model {"), "{text}");
    let boxes = text
        .lines()
        .filter(|l| l.contains(" [label=") && !l.contains("->"));
    // Ten nodes of the first block, the folded box, `result`, the input and the output.
    assert_eq!(boxes.count(), 14, "{text}");
    assert!(
        text.contains(
            "× 99 more blocks like the one above\\n10 nodes each: MatMul → Add → Relu → Mul → …"
        ),
        "{text}"
    );
    assert!(text.contains("\"b0.matmul\\nMatMul\""), "{text}");
    // Shapes on every edge: the file's for the input and output, tract's for the others.
    let edges: Vec<&str> = text.lines().filter(|l| l.contains("->")).collect();
    assert!(
        edges.iter().all(|e| e.contains("[label=\"1×16\"]")),
        "{text}"
    );
    assert!(edges.len() >= 13, "{text}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.contains("<svg") && picture.contains("99 more blocks"),
        "{picture}"
    );
    for (model, out, says) in [
        ("mlp.safetensors", "x.svg", "--graph draws ONNX graphs"),
        ("mlp.onnx", "x.png", "the picture is FILE.svg or FILE.dot"),
    ] {
        let target = dir.path().join(out);
        let run = cargo_infer()
            .arg("inspect")
            .arg(fixtures().join(model))
            .arg("--graph")
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{model}");
        assert!(
            String::from_utf8_lossy(&run.stderr).contains(says),
            "{model}"
        );
        assert!(!target.exists());
    }
}

//! Layers applied from synthetic tar streams: whiteouts, opaque directories, hard and symbolic
//! links, refused paths, compression, and every broken stream.

use std::io::{Read, Write as _};

use super::*;
use crate::scan::testelf::{Spec, build};
use crate::scan::tree::Index;

/// One entry of a synthetic layer.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Exe(&'a str, &'a [u8]),
    Dir(&'a str),
    Hard(&'a str, &'a str),
    Sym(&'a str, &'a str),
    /// A header written byte by byte, with this name (the `tar` crate refuses `..`).
    RawName(&'a [u8]),
}

fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(0o644);
        match e {
            E::File(p, data) | E::Exe(p, data) => {
                if matches!(e, E::Exe(..)) {
                    h.set_mode(0o755);
                }
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(::tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Hard(p, target) | E::Sym(p, target) => {
                let t = match e {
                    E::Hard(..) => ::tar::EntryType::Link,
                    _ => ::tar::EntryType::Symlink,
                };
                h.set_entry_type(t);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::RawName(name) => {
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn keep() -> Keep {
    Keep {
        max_file_bytes: 1 << 20,
        paths: Vec::new(),
    }
}

/// The layers applied in order, into `store`.
fn apply(layers: &[Vec<u8>], store: &mut MemStore) -> Result<Merged, LayerError> {
    let mut merged = Merged::new();
    for l in layers {
        merged.apply(&mut l.as_slice(), &keep(), store)?;
    }
    Ok(merged)
}

fn listing(tree: &dyn Tree) -> Vec<String> {
    (tree.entries().unwrap().into_iter())
        .map(|e| match e.kind {
            EntryKind::Dir => format!("{}/", e.path),
            EntryKind::File { .. } => e.path,
            EntryKind::Symlink(t) => format!("{} -> {t}", e.path),
        })
        .collect()
}

fn read(tree: &dyn Tree, path: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut r = tree.open(path).map_err(|e| e.to_string())?;
    r.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

const ELF: &[u8] = b"\x7fELF\x02\x01\x01 an ELF file's bytes";

#[test]
fn a_whiteout_deletes_a_file_and_a_directory_with_all_it_held() {
    let l1 = layer(&[
        E::Exe("usr/bin/a", ELF),
        E::File("usr/bin/b", b"b"),
        E::File("opt/x/y/z", b"z"),
    ]);
    let l2 = layer(&[E::File("usr/bin/.wh.a", b""), E::File("opt/.wh.x", b"")]);
    let mut store = MemStore::default();
    let merged = apply(&[l1, l2], &mut store).unwrap();
    let tree = merged.tree(&store);
    assert_eq!(
        listing(&tree),
        ["/opt/", "/usr/", "/usr/bin/", "/usr/bin/b"]
    );
    // A whiteout hides only lower layers: the same name in a later layer is back.
    let l3 = layer(&[E::Exe("usr/bin/a", b"new")]);
    let mut store = MemStore::default();
    let l1 = layer(&[E::Exe("usr/bin/a", ELF)]);
    let l2 = layer(&[E::File("usr/bin/.wh.a", b"")]);
    let merged = apply(&[l1, l2, l3], &mut store).unwrap();
    assert_eq!(read(&merged.tree(&store), "/usr/bin/a").unwrap(), b"new");
}

#[test]
fn an_opaque_directory_hides_lower_layers_only() {
    let l1 = layer(&[
        E::File("etc/ssl/old.cnf", b"old"),
        E::File("etc/ssl/sub/deep", b"d"),
        E::File("etc/other", b"o"),
    ]);
    // The marker may come after entries of its own layer: those stay.
    let l2 = layer(&[
        E::File("etc/ssl/new.cnf", b"new"),
        E::File("etc/ssl/.wh..wh..opq", b""),
    ]);
    let mut store = MemStore::default();
    let tree = apply(&[l1, l2], &mut store).unwrap().tree(&store);
    assert_eq!(
        listing(&tree),
        ["/etc/", "/etc/other", "/etc/ssl/", "/etc/ssl/new.cnf"]
    );
    assert_eq!(read(&tree, "/etc/ssl/new.cnf").unwrap(), b"new");
}

#[test]
fn a_hard_link_outlives_its_target_and_a_link_to_a_deleted_file_is_refused() {
    let l1 = layer(&[E::Exe("bin/tool", ELF), E::Hard("bin/alias", "bin/tool")]);
    let l2 = layer(&[E::File("bin/.wh.tool", b"")]);
    let mut store = MemStore::default();
    let merged = apply(&[l1.clone(), l2.clone()], &mut store).unwrap();
    let tree = merged.tree(&store);
    assert_eq!(listing(&tree), ["/bin/", "/bin/alias"]);
    let entries = tree.entries().unwrap();
    assert_eq!(
        entries[1].kind,
        EntryKind::File {
            size: ELF.len() as u64,
            executable: true
        }
    );
    assert_eq!(read(&tree, "/bin/alias").unwrap(), ELF);
    // Linking to the deleted path afterwards names nothing.
    let l3 = layer(&[E::Hard("bin/again", "bin/tool")]);
    let e = apply(&[l1, l2, l3], &mut MemStore::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "entry \"bin/again\": hard link to /bin/tool, which is not a file of the layers so far"
    );
    // And a link to a directory is no file either.
    let e = apply(&[layer(&[E::Dir("d"), E::Hard("x", "d")])], &mut store).unwrap_err();
    assert!(e.to_string().contains("not a file"), "{e}");
}

#[test]
fn symlink_chains_resolve_across_layers() {
    let l1 = layer(&[
        E::File("usr/lib/libx.so.3", ELF),
        E::Sym("usr/lib/libx.so", "libx.so.3"),
        E::Sym("lib", "usr/lib"),
    ]);
    let l2 = layer(&[
        E::Sym("etc/alt", "/lib/libx.so"),
        E::Sym("loop/a", "b"),
        E::Sym("loop/b", "a"),
    ]);
    let mut store = MemStore::default();
    let tree = apply(&[l1, l2], &mut store).unwrap().tree(&store);
    let index = Index::new(tree.entries().unwrap());
    assert_eq!(
        index.resolve_file("/etc/alt").as_deref(),
        Some("/usr/lib/libx.so.3")
    );
    assert_eq!(index.resolve_file("/loop/a"), None);
    // A symlink is never followed by `open`.
    assert!(tree.open("/lib/libx.so.3").is_err());
    assert!(tree.open("/usr/lib/libx.so").is_err());
}

#[test]
fn paths_with_dot_dot_are_refused() {
    for name in [&b"../etc/passwd"[..], b"usr/../../x", b"./a/.."] {
        let l = layer(&[E::RawName(name)]);
        let e = apply(&[l], &mut MemStore::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("a path with a \"..\" component: refused"),
            "{e}"
        );
    }
    let l = layer(&[E::File("a", b"a"), E::Hard("b", "../a")]);
    let e = apply(&[l], &mut MemStore::default()).unwrap_err();
    assert!(e.to_string().contains("hard link target"), "{e}");
    // `.` and `//` are spelling, not escapes.
    let l = layer(&[E::File("./a//b", b"x")]);
    let mut store = MemStore::default();
    assert_eq!(
        listing(&apply(&[l], &mut store).unwrap().tree(&store)),
        ["/a/", "/a/b"]
    );
}

#[test]
fn replacing_keeps_to_overlay_rules() {
    // A file over a directory takes the directory's contents with it; a directory under a
    // former file's name replaces the file.
    let l1 = layer(&[E::File("a/x", b"x"), E::File("f", b"file")]);
    let l2 = layer(&[E::File("a", b"now a file"), E::File("f/inside", b"i")]);
    let mut store = MemStore::default();
    let tree = apply(&[l1, l2], &mut store).unwrap().tree(&store);
    assert_eq!(listing(&tree), ["/a", "/f/", "/f/inside"]);
}

#[test]
fn gzip_and_zstd_layers_read_as_tar() {
    let tar = layer(&[E::Exe("bin/x", ELF), E::File("etc/ssl/openssl.cnf", b"cnf")]);
    let mut two_members = gzip(&tar[..1024]);
    two_members.extend(gzip(&tar[1024..]));
    // zstd in two frames with a skippable frame between them (as zstd:chunked writes).
    let mut frames = zstd(&tar[..1536]);
    frames.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    frames.extend(zstd(&tar[1536..]));
    for (blob, kind) in [
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Gzip),
        (two_members, Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
        (frames, Compression::Zstd),
    ] {
        let mut store = MemStore::default();
        let mut merged = Merged::new();
        let stats = (merged.apply(&mut blob.as_slice(), &keep(), &mut store)).unwrap();
        assert_eq!(stats.compression, Some(kind));
        assert_eq!(stats.entries, 2);
        let tree = merged.tree(&store);
        assert_eq!(read(&tree, "/bin/x").unwrap(), ELF, "{kind:?}");
        assert_eq!(read(&tree, "/etc/ssl/openssl.cnf").unwrap(), b"cnf");
    }
}

#[test]
fn broken_streams_are_errors() {
    let tar = layer(&[E::Exe("bin/x", ELF)]);
    let gz = gzip(&tar);
    let zs = zstd(&tar);
    let mut bad_sum = tar.clone();
    bad_sum[0] ^= 1;
    // A header that declares 10 GB of data the stream does not have.
    let mut h = ::tar::Header::new_gnu();
    h.set_size(10 << 30);
    h.set_path("huge").unwrap();
    h.set_cksum();
    let mut huge = h.as_bytes().to_vec();
    huge.extend([7u8; 4096]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            gz[..gz.len() / 2].to_vec(),
            "gzip: incomplete deflate stream",
        ),
        (zs[..zs.len() - 8].to_vec(), "zstd"),
        (tar[..700].to_vec(), "the layer ends at byte"),
        (tar[..300].to_vec(), "inside a header"),
        (bad_sum, "does not match its bytes"),
        (huge, "the layer ends at byte 4608, inside an entry's data"),
        (gzip(&[0xffu8; 4096]), "not a tar archive"),
    ];
    for (blob, want) in cases {
        let e = apply(&[blob], &mut MemStore::default()).unwrap_err();
        assert!(e.to_string().contains(want), "want {want:?}: {e}");
    }
}

#[test]
fn extension_headers_are_read_within_bounds() {
    // A GNU long name and a PAX path both name the entry.
    let long = format!("usr/{}/tool", "d".repeat(300));
    let l = layer(&[E::Exe(&long, ELF)]);
    let mut store = MemStore::default();
    let tree = apply(&[l], &mut store).unwrap().tree(&store);
    assert_eq!(read(&tree, &format!("/{long}")).unwrap(), ELF);
    let mut b = ::tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"pax/named"[..])])
        .unwrap();
    let mut h = ::tar::Header::new_ustar();
    h.set_size(1);
    h.set_path("short").unwrap();
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let mut store = MemStore::default();
    let tree = apply(&[b.into_inner().unwrap()], &mut store)
        .unwrap()
        .tree(&store);
    assert_eq!(listing(&tree), ["/pax/", "/pax/named"]);
    // A long name that declares 10 MiB is refused before it is read.
    let mut h = ::tar::Header::new_gnu();
    h.set_entry_type(::tar::EntryType::GNULongName);
    h.set_size(10 << 20);
    h.set_path("././@LongLink").unwrap();
    h.set_cksum();
    let e = apply(&[h.as_bytes().to_vec()], &mut MemStore::default()).unwrap_err();
    assert!(e.to_string().contains("at most 65536"), "{e}");
    // A path past PATH_MAX is refused.
    let l = layer(&[E::File(&"p/".repeat(3000), b"")]);
    let e = apply(&[l], &mut MemStore::default()).unwrap_err();
    assert!(e.to_string().contains("longer than 4096"), "{e}");
}

#[test]
fn only_what_the_scan_reads_is_kept() {
    let mut big_elf = ELF.to_vec();
    big_elf.resize(2 << 20, 0);
    let jar = b"PK\x03\x04 a jar";
    let dpkg = vec![b'x'; 3 << 20];
    let l = layer(&[
        E::Exe("bin/tool", ELF),
        E::Exe("bin/big", &big_elf),
        E::File("lib/a.jar", jar),
        E::File("lib/not-a.jar", b"text"),
        E::File("var/lib/dpkg/status", &dpkg),
        E::File("usr/share/doc/readme", b"a long readme"),
        E::File("etc/app.conf", b"conf"),
        E::File("tiny", b"ab"),
    ]);
    let mut store = MemStore::default();
    let mut merged = Merged::new();
    let stats = merged
        .apply(&mut l.as_slice(), &keep(), &mut store)
        .unwrap();
    assert_eq!(
        stats.kept_bytes,
        (ELF.len() + jar.len() + (1 << 20) + 4) as u64
    );
    let tree = merged.tree(&store);
    assert_eq!(read(&tree, "/bin/tool").unwrap(), ELF);
    assert_eq!(read(&tree, "/lib/a.jar").unwrap(), jar);
    assert_eq!(read(&tree, "/etc/app.conf").unwrap(), b"conf");
    assert_eq!(read(&tree, "/var/lib/dpkg/status").unwrap().len(), 1 << 20);
    assert_eq!(read(&tree, "/tiny").unwrap(), b"ab");
    // Past the file limit an ELF file keeps its first bytes; the scanner reads no more.
    let mut head = Vec::new();
    tree.open("/bin/big")
        .unwrap()
        .take(4)
        .read_to_end(&mut head)
        .unwrap();
    assert_eq!(head, b"\x7fELF");
    assert!(tree.missed().is_empty());
    let e = read(&tree, "/usr/share/doc/readme").unwrap_err();
    assert!(e.contains("only the first bytes"), "{e}");
    assert_eq!(tree.missed(), ["/usr/share/doc/readme"]);
}

#[test]
fn the_index_is_bounded_in_entries_and_name_bytes() {
    let l = layer(&[E::File("a/b/c", b""), E::File("a/d", b"")]);
    let applied = |bounds| {
        let mut merged = Merged::new();
        merged.bounds = bounds;
        merged.apply(&mut l.as_slice(), &keep(), &mut MemStore::default())
    };
    assert!(applied((4, 100)).is_ok());
    let e = applied((3, 100)).unwrap_err();
    assert!(e.to_string().starts_with("more than 500000 entries"), "{e}");
    // "/a" "/a/b" "/a/b/c" "/a/d": 16 bytes of paths.
    assert!(applied((10, 16)).is_ok());
    assert!(applied((10, 15)).is_err());
    // Removed entries give their room back.
    let l2 = layer(&[E::File(".wh.a", b""), E::Sym("l", "0123456789")]);
    let mut merged = Merged::new();
    merged.bounds = (4, 16);
    for l in [&l, &l2] {
        merged
            .apply(&mut l.as_slice(), &keep(), &mut MemStore::default())
            .unwrap();
    }
    assert_eq!((merged.len(), merged.name_bytes), (1, 12));
    let long = "t".repeat(MAX_PATH + 1);
    let e = apply(&[layer(&[E::Sym("l", &long)])], &mut MemStore::default()).unwrap_err();
    assert!(
        e.to_string().contains("symlink target longer than 4096"),
        "{e}"
    );
}

#[test]
fn the_blob_is_read_to_its_end() {
    struct Counting<'a>(&'a [u8], usize);
    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }
    let mut blob = gzip(&layer(&[E::File("a", b"a")]));
    blob.extend([0u8; 5000]); // padding after the gzip member
    let mut c = Counting(&blob, 0);
    let mut merged = Merged::new();
    let _ = merged.apply(&mut c, &keep(), &mut MemStore::default());
    assert_eq!(c.1, blob.len());
}

#[test]
fn a_scan_of_layers_sees_the_merged_image() {
    use crate::catalog::Catalog;
    use crate::domain::fips::Status;
    use crate::scan::{Exceptions, Limits, ScanInput, Subject, scan};
    let static_c = build(&Spec::default());
    let l1 = layer(&[E::Exe("usr/local/bin/c-static", &static_c)]);
    let l2 = layer(&[E::File("usr/local/bin/.wh.c-static", b"")]);
    let certificates = Catalog::embedded().certificates().to_vec();
    let exceptions = Exceptions::default();
    let input = ScanInput {
        profile: Default::default(),
        env: Vec::new(),
        certificates: &certificates,
        exceptions: &exceptions,
        subject: Subject::default(),
        today: "2026-06-01".parse().unwrap(),
        limits: Limits::default(),
    };
    let status = |layers: &[Vec<u8>]| {
        let mut store = MemStore::default();
        let tree = apply(layers, &mut store).unwrap().tree(&store);
        scan(&tree, &input).unwrap().status
    };
    assert_eq!(status(std::slice::from_ref(&l1)), Status::None);
    assert_eq!(status(&[l1, l2]), Status::Full);
}

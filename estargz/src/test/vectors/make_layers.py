#!/usr/bin/env python3
"""Writes small, deterministic OCI image layouts whose layers exercise every TOC shape.

Used by make-vectors.sh (the layers are then converted by the reference converter, ctr-remote)
and kept deterministic so that re-running the script gives the same source layers.
Usage: make_layers.py OUT_DIR   -> OUT_DIR/<image>/ (an OCI layout) for each image below.
"""
import gzip, hashlib, io, json, os, random, sys, tarfile

MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, uname="root", gname="root", size=0,
         linkname="", devmajor=0, devminor=0, pax=None):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.uname, t.gname = kind, mode, uid, gid, uname, gname
    t.size, t.linkname, t.devmajor, t.devminor, t.mtime = size, linkname, devmajor, devminor, MTIME
    if pax:
        t.pax_headers = pax
    return t


def add(tar, t, data=b""):
    t.size = len(data) if t.type == tarfile.REGTYPE else 0
    tar.addfile(t, io.BytesIO(data) if data else None)


def rnd(seed, n):
    return random.Random(seed).randbytes(n)


def layer_basic(tar):
    add(tar, info("./", tarfile.DIRTYPE, 0o755))
    add(tar, info("./etc/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./etc/hostname"), b"starling\n")
    add(tar, info("./etc/empty"))
    add(tar, info("./bin/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./bin/tool", mode=0o4755), rnd(1, 5000))
    add(tar, info("./bin/tool-link", tarfile.LNKTYPE, linkname="./bin/tool"))
    add(tar, info("./bin/sym", tarfile.SYMTYPE, 0o777, linkname="tool"))
    add(tar, info("./bin/dangling", tarfile.SYMTYPE, 0o777, linkname="../../nowhere"))
    add(tar, info("./tmp/", tarfile.DIRTYPE, 0o1777))
    add(tar, info("./srv/", tarfile.DIRTYPE, 0o2775, uid=1000, gid=1000, uname="app", gname="app"))
    add(tar, info("./srv/owned", mode=0o640, uid=1000, gid=1000, uname="app", gname="app"), b"mine")
    add(tar, info("./srv/owned2", mode=0o600, uid=1000, gid=1000, uname="app", gname="app"), b"mine too")
    add(tar, info("./dev/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3))
    add(tar, info("./dev/sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0))
    add(tar, info("./dev/pipe", tarfile.FIFOTYPE, 0o644))
    add(tar, info("./xattr/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./xattr/file", pax={"SCHILY.xattr.user.foo": "bar",
                                       "SCHILY.xattr.user.binary": "\udcff\udcfe\udcfd"}), b"x")
    long_dir = "./" + "d" * 60 + "/" + "e" * 60 + "/"
    add(tar, info(long_dir[:63], tarfile.DIRTYPE, 0o755))
    add(tar, info(long_dir, tarfile.DIRTYPE, 0o755))
    add(tar, info(long_dir + "f" * 150), b"long name\n")
    add(tar, info("./unicodé/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./unicodé/naïve.txt"), "ünïcödé\n".encode())
    add(tar, info("./data/", tarfile.DIRTYPE, 0o755))
    add(tar, info("./data/random.bin"), rnd(2, 70000))
    add(tar, info("./data/zeros.bin"), bytes(200000))
    for i in range(40):
        add(tar, info("./data/small-%02d.txt" % i), ("line %d\n" % i).encode() * (i + 1))


def layer_many(tar):
    add(tar, info("usr/", tarfile.DIRTYPE, 0o755))
    r = random.Random(7)
    for d in range(20):
        add(tar, info("usr/lib%02d/" % d, tarfile.DIRTYPE, 0o755))
        for f in range(50):
            n = r.choice([0, 1, 10, 100, 1000, 5000, 20000])
            words = [b"alpha", b"beta", b"gamma", b"delta", b"%d" % f, b"\n"]
            text = b" ".join(r.choice(words) for _ in range(n // 5 + 1))[:n]
            add(tar, info("usr/lib%02d/file%03d.so" % (d, f), mode=0o755), text)


def layer_whiteouts(tar):
    add(tar, info("etc/", tarfile.DIRTYPE, 0o755))
    add(tar, info("etc/.wh.hostname"))
    add(tar, info("data/", tarfile.DIRTYPE, 0o755))
    add(tar, info("data/.wh..wh..opq"))
    add(tar, info("data/new.txt"), b"new\n")


IMAGES = {
    "basic": [layer_basic],
    "many": [layer_many],
    "two-layers": [layer_basic, layer_whiteouts],
}


def blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d


def write_image(layout, name, layers):
    descs, diff_ids = [], []
    for make in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            make(tar)
        raw = raw.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": blob(layout, gz), "size": len(gz)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "config": {"Cmd": ["/bin/sh"]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": blob(layout, config), "size": len(config)},
                           "layers": descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(layout, manifest),
        "size": len(manifest), "annotations": {"io.containerd.image.name": "example.com/vectors/%s:src" % name,
                                               "org.opencontainers.image.ref.name": "src"}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    out = sys.argv[1]
    for name, layers in IMAGES.items():
        write_image(os.path.join(out, name), name, layers)

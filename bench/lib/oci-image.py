#!/usr/bin/env python3
"""Writes an OCI image layout: oci-image.py LAYOUT TAG TAR... (bottom layer first).

Each tar is gzipped with pigz -1 (the source image only feeds the converter; its compression
does not matter) and becomes one layer; the config lists the tars' diff ids.
"""
import hashlib
import json
import os
import subprocess
import sys

layout, tag, tars = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


layers, diff_ids = [], []
for tar in tars:
    h = hashlib.sha256()
    with open(tar, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    diff_ids.append("sha256:" + h.hexdigest())
    gz = subprocess.run(["pigz", "-c", "-1", tar], check=True, capture_output=True).stdout
    layers.append(dict(put(gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                           "layers": layers}).encode())
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
                                                      annotations={"org.opencontainers.image.ref.name": tag})]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)

"""The vendor's SDK the way its documentation shows it: import_local_files_to_volume in
batches of 16 from one process. argv: BASE_URL API_KEY VOLUME_ID FOLDER. Prints files/s."""
import os
import sys
import time

from moi import RawClient, SDKClient

base, key, volume, folder = sys.argv[1:5]
sdk = SDKClient(RawClient(base, key))
paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
started = time.monotonic()
for i in range(0, len(paths), 16):
    batch = paths[i:i + 16]
    metas = [{"filename": os.path.basename(p), "path": os.path.basename(p)} for p in batch]
    r = sdk.import_local_files_to_volume(batch, volume, metas, None)
    assert r["results"] and all(x["success"] for x in r["results"]), r
secs = time.monotonic() - started
print(f"{len(paths) / secs:.1f}")

"""Classify a large batch of images with a skipblocks model on a Dask cluster.

    python examples/dask_batch.py                                    # 64 images, LocalCluster
    python examples/dask_batch.py --images 2048 --batch 32 --workers 2 --threads-per-worker 1
    python examples/dask_batch.py --weights resnet18-f37072fd.pth --verify
    python examples/dask_batch.py --scheduler tcp://10.0.0.1:8786    # an existing cluster

The model is built once here, in the client, and shipped to every worker by pickle. The images
form a dask array of shape (N, 3, H, W) chunked along N; each chunk is classified where it lies,
by `dask.array.map_blocks`, giving (N, classes) logits. Without `--scheduler` the workers are
processes of a `distributed.LocalCluster` on this machine; with `--scheduler ADDRESS` the same
code runs on the workers of a cluster that is already running, on as many machines as it spans
(each needs skipblocks, NumPy, dask and distributed installed; this file need not be there).

The images are synthetic: image i is drawn from a generator seeded with (seed, i), on the
worker, when its chunk is computed. So the client never holds the batch, nothing has to be on
a shared disk, and the same images come out whatever the chunking (the tests rely on that). To
classify real images, replace `image_array` with a dask array of them, e.g. `da.from_zarr`, or
`da.from_array(np.load(path, mmap_mode="r"), chunks=...)` when every worker sees that path.

Requires the `dask` extra: pip install ".[dask]".
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

import dask.array as da
from distributed import Client, LocalCluster, WorkerPlugin, get_task_stream

import skipblocks as sb
from skipblocks import models

# The builders of skipblocks.models that take an image batch and return logits.
MODEL_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
               "densenet121", "densenet161", "densenet169", "densenet201",
               "googlenet", "se_resnet50", "se_resnet101")


def build_model(name="resnet18", weights=None, num_classes=1000, seed=0):
    """The network in eval mode, from `weights` (a file or a state_dict) or
    from skipblocks' initialisation under `seed`; `num_classes` only applies
    without weights (a weights file decides its own)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    sb.manual_seed(seed)
    builder = getattr(models, name)
    model = builder(weights=weights) if weights is not None else builder(num_classes=num_classes)
    return model.eval()


def classifier_output(model):
    """(classes, dtype) of the logits: those of the network's last Linear
    layer (every network in MODEL_NAMES ends with one), found without
    running the model, which would cost a forward pass in the client."""
    linears = [module for module in model.modules() if isinstance(module, sb.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no Linear layer to give the class count")
    return linears[-1].out_features, linears[-1].weight.dtype


def synthetic_images(start, stop, size, seed=0):
    """Images start .. stop-1 as one (stop - start, 3, size, size) float32
    batch. Each image has its own generator, seeded with (seed, index), so an
    image does not depend on the chunk it falls in."""
    batch = np.empty((stop - start, 3, size, size), dtype=np.float32)
    for row, index in enumerate(range(start, stop)):
        np.random.default_rng((seed, index)).random(out=batch[row], dtype=np.float32)
    return batch


def _images_of_block(size, seed, block_info=None):
    # block_info[None] describes the output chunk map_blocks asks for: its
    # rows of the whole array are the indices of its images.
    start, stop = block_info[None]["array-location"][0]
    return synthetic_images(start, stop, size, seed)


def image_array(n_images, batch, size, seed=0):
    """A lazy (n_images, 3, size, size) float32 dask array, `batch` images
    per chunk, each chunk generated on a worker. (Generating and classifying
    a chunk stay two tasks, since the model's future keeps dask from fusing
    them, but the scheduler runs the second where the first left its images:
    no image crosses the network.)"""
    row_chunks = da.core.normalize_chunks(batch, (n_images,))[0]
    return da.map_blocks(_images_of_block, size, seed,
                         chunks=(row_chunks, (3,), (size,), (size,)),
                         dtype=np.float32, meta=np.empty((0, 0, 0, 0), dtype=np.float32))


def _classify_block(images, model):
    return model(images)


def logits_array(images, model, num_classes, dtype):
    """The model applied to every chunk of `images`: (N, num_classes) logits,
    chunked as `images` along N. `model` may be the model or a future of it
    (dask hands each task the model itself)."""
    # Each (B, 3, H, W) chunk becomes a (B, num_classes) chunk: axes 2 and 3
    # disappear (drop_axis), axis 1 changes length (3 -> num_classes, given
    # by chunks=). dtype and meta tell dask the result's type without it
    # calling the model on a dummy chunk to find out.
    return images.map_blocks(_classify_block, model, drop_axis=[2, 3],
                             chunks=(images.chunks[0], (num_classes,)),
                             dtype=dtype, meta=np.empty((0, 0), dtype=dtype))


class SkipblocksThreadsPerWorker(WorkerPlugin):
    """Sets skipblocks' thread count in each worker process to the number of
    threads dask gives that worker (`threads_per_worker`, `dask worker
    --nthreads`), on every worker present now or joining later.

    Why: skipblocks' default is every CPU the process may use, so W worker
    processes on one machine would each start that many kernel threads, W
    times too many for its cores; dask is told how many cores each worker
    gets through its thread count, so skipblocks uses the same number. Two
    dask threads of one worker do not multiply this: skipblocks runs one
    multi-threaded loop at a time per process (a concurrent caller waits for
    the pool), so a worker keeps to its share of the cores. The worker's own
    count is read on the worker, because on a real cluster each machine's
    workers may have been started with a different --nthreads."""

    name = "skipblocks-threads-per-worker"

    def setup(self, worker):
        sb.set_num_threads(worker.state.nthreads)


@dataclasses.dataclass
class BatchResult:
    logits: np.ndarray           # (N, classes), in image order
    chunk_workers: list          # the address of the worker that classified each chunk
    worker_pids: dict            # address -> process id of every worker
    worker_threads: dict         # address -> skipblocks.get_num_threads() there
    worker_isas: dict            # address -> skipblocks.get_isa() there
    startup_seconds: float       # building the model, starting or joining the cluster, shipping it
    compute_seconds: float       # generating and classifying the images

    @property
    def images_per_second(self):
        return len(self.logits) / self.compute_seconds


def _chunk_workers(task_stream, logits):
    # The task stream lists every task run, with its worker; the tasks that
    # produced the logits' chunks have keys (logits.name, chunk index, 0).
    workers = [None] * logits.numblocks[0]
    for task in task_stream:
        key = task["key"]
        if isinstance(key, tuple) and key[0] == logits.name:
            workers[key[1]] = task["worker"]
    return workers


def classify_on_cluster(client, model, n_images, batch, size, seed=0):
    """Ships `model` to the workers of `client` and classifies n_images
    synthetic images; returns a BatchResult (startup_seconds left at 0)."""
    if __name__ != "__main__" and not isinstance(client.cluster, LocalCluster):
        # Imported (by the tests, from a notebook) rather than run: pickle
        # then names this module's functions and classes instead of carrying
        # their code, as it does for a script's, so the scheduler and the
        # workers of a running cluster must be able to import it: send them
        # this file. Not to a LocalCluster: its workers find this module as
        # the client does (they start with its sys.path), and its scheduler
        # runs in the client's process, where the upload would re-import
        # this module from a temporary folder in place of the caller's.
        client.upload_file(__file__)
    client.register_plugin(SkipblocksThreadsPerWorker(), name=SkipblocksThreadsPerWorker.name)
    # Pickled once, the model goes to every worker before any task runs, and
    # each task refers to it by key; later computations can reuse the future.
    # Passing the model itself to map_blocks would put it into the graph:
    # dask's sizeof() sees a skipblocks module as a few dozen bytes, so
    # map_blocks inlines it in each task instead of making it a key of its
    # own, and the graph sent to the scheduler is 43 MiB for ResNet-18 (dask
    # warns), then travels to the workers with the tasks.
    model_future = client.scatter(model, broadcast=True)
    num_classes, dtype = classifier_output(model)
    logits = logits_array(image_array(n_images, batch, size, seed), model_future,
                          num_classes, dtype)
    started = time.perf_counter()
    with get_task_stream(client) as task_stream:
        # All logits come back to the client: 4 kB an image with 1000
        # classes. For batches too large for that, keep them on the cluster
        # instead (logits.argmax(axis=1), or logits.to_zarr(...)).
        values = client.compute(logits).result()
    compute_seconds = time.perf_counter() - started
    return BatchResult(logits=values, chunk_workers=_chunk_workers(task_stream.data, logits),
                       worker_pids=client.run(os.getpid),
                       worker_threads=client.run(sb.get_num_threads),
                       worker_isas=client.run(sb.get_isa),
                       startup_seconds=0.0, compute_seconds=compute_seconds)


def run(n_images=64, batch=8, size=224, workers=2, threads_per_worker=1, model="resnet18",
        weights=None, num_classes=1000, scheduler=None, seed=0):
    """Builds the model here and classifies n_images synthetic images on a
    new LocalCluster of `workers` processes (closed before returning) or,
    with `scheduler` (e.g. "tcp://10.0.0.1:8786"), on that running cluster
    (left running; `workers` and `threads_per_worker` are then its own)."""
    started = time.perf_counter()
    network = build_model(model, weights, num_classes, seed)
    if scheduler is not None:
        with Client(scheduler) as client:
            result = classify_on_cluster(client, network, n_images, batch, size, seed)
    else:
        # processes=True: worker processes, so the GIL and the memory of one
        # do not limit the others, as on separate machines. No dashboard:
        # it needs bokeh, and a second run on this machine would contend
        # for its port.
        with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                          processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            result = classify_on_cluster(client, network, n_images, batch, size, seed)
    result.startup_seconds = time.perf_counter() - started - result.compute_seconds
    return result


def single_process_logits(n_images, size, model="resnet18", weights=None, num_classes=1000,
                          seed=0, batch=None):
    """The same model and images, run here without Dask: the reference the
    distributed logits must equal bit for bit (skipblocks' results do not
    depend on the thread count or on the batch a row comes in)."""
    network = build_model(model, weights, num_classes, seed)
    batch = batch or n_images
    return np.concatenate([network(synthetic_images(start, min(start + batch, n_images), size,
                                                    seed))
                           for start in range(0, n_images, batch)])


def _report(result, args):
    per_worker = {address: result.chunk_workers.count(address) for address in result.worker_pids}
    print(f"model: {args.model} ({result.logits.shape[1]} classes, "
          f"weights: {args.weights or 'random'})")
    print(f"images: {len(result.logits)} of 3x{args.size}x{args.size}, {args.batch} per chunk")
    workers = len(result.worker_pids)
    print(f"cluster: {args.scheduler or 'LocalCluster'}, {workers} worker{'s' * (workers != 1)}")
    for address, pid in sorted(result.worker_pids.items()):
        print(f"  {address} pid {pid}: {per_worker[address]} chunks, skipblocks "
              f"{result.worker_threads[address]} threads, {result.worker_isas[address]}")
    print(f"startup (model, cluster, model to workers): {result.startup_seconds:.2f} s")
    print(f"classify: {result.compute_seconds:.2f} s, {result.images_per_second:.1f} images/s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--batch", type=int, default=8, help="images per chunk (default 8)")
    parser.add_argument("--size", type=int, default=224, help="image height and width "
                                                              "(default 224)")
    parser.add_argument("--workers", type=int, default=2,
                        help="LocalCluster worker processes (default 2)")
    parser.add_argument("--threads-per-worker", type=int, default=1,
                        help="threads of each LocalCluster worker, and skipblocks threads in it "
                             "(default 1); workers x threads should not exceed the cores")
    parser.add_argument("--model", default="resnet18", choices=MODEL_NAMES)
    parser.add_argument("--weights", help="a .pth, .safetensors or .npz file for --model "
                                          "(default: random weights)")
    parser.add_argument("--classes", type=int, default=1000,
                        help="classes of a model with random weights (default 1000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random weights and of the images")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. "
                                            "tcp://10.0.0.1:8786 (default: start a LocalCluster)")
    parser.add_argument("--save", help="write the logits to this .npy file")
    parser.add_argument("--verify", action="store_true",
                        help="also run the model here, without Dask, and compare")
    args = parser.parse_args(argv)
    for flag in ("images", "batch", "size", "workers", "threads_per_worker", "classes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")

    result = run(args.images, args.batch, args.size, args.workers, args.threads_per_worker,
                 args.model, args.weights, args.classes, args.scheduler, args.seed)
    _report(result, args)
    if args.save:
        np.save(args.save, result.logits)
    if args.verify:
        expected = single_process_logits(args.images, args.size, args.model, args.weights,
                                         args.classes, args.seed, args.batch)
        same = np.array_equal(result.logits, expected)
        print("same bits as a run in this process:", "yes" if same else
              f"NO (max |difference| {np.abs(result.logits - expected).max():.3g})")
        if not same and set(result.worker_isas.values()) != {sb.get_isa()}:
            # Results are bit-identical across thread counts, not across
            # instruction sets (AVX2's fused multiply-adds round differently).
            print(f"  this process runs {sb.get_isa()}; the workers' instruction sets differ")
        if not same:
            sys.exit(1)
    return result


if __name__ == "__main__":
    main()

"""SAM's mask decoder on ONNX Runtime: the stock decoder's function, faster on a CPU.

Once the image embedding is cached, a click costs one decoder call, so on a CPU the decoder is
most of the click's latency. ONNX Runtime runs the decoder's two-way transformer with fused
attention, layer norms and GELUs where eager PyTorch runs it op by op (SAM's own web demo also
runs its decoder as an ONNX graph): the transformer alone ~1.5x faster, a whole click ~1.15x
(`benchmarks/click_latency.py`). Only `MaskDecoder.predict_masks` moves: prompt encoding, mask
choice and upscaling stay the stock `SamPredictor` code, so masks and scores match it to float
rounding.

The graph is exported from the loaded weights with `torch.onnx.export` (a few seconds) and kept
in $EDITANYTHING_CACHE (default $EDITANYTHING_HOME/cache) under a hash of those weights, so later
starts only load it."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
from pathlib import Path
from typing import Any, Iterator

from ..errors import first_line
from ..models.onnx_cache import cached_session, state_sha256

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph's inputs or outputs change


def onnx_available() -> bool:
    """True when ONNX Runtime and the exporter's packages are installed.

    Looked up, not imported: the exporter (onnxscript, ~0.5 s to import) is only loaded when
    there is no cached graph to export.
    """
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


class OnnxMaskDecoder:
    """Callable with `MaskDecoder.predict_masks`' signature, running the exported graph.

    Inputs it was not exported for (a batch of several prompts, non-float32 tensors under
    autocast) go to the stock method, so it can stand in for `predict_masks` everywhere.
    """

    def __init__(self, decoder: Any, session: Any) -> None:
        import torch

        self._torch = torch
        self.stock = functools.partial(type(decoder).predict_masks, decoder)  # the method, even inside `routed`
        self.session = session
        self._inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def from_decoder(cls, decoder: Any, image_pe: Any, *, cache_dir: Path | None = None,
                     threads: int | None = None) -> "OnnxMaskDecoder":
        """Export (or load from the cache) `decoder` (a `MaskDecoder`) and open an ONNX Runtime session.

        `image_pe` is the prompt encoder's dense positional encoding (its shape fixes the graph's).
        Raises whatever export or loading raises; `load` turns that into a fallback.
        """
        import torch

        def export() -> bytes:
            log.info("exporting SAM's mask decoder to ONNX (once per checkpoint, a few seconds)")
            return _export(decoder, image_pe)

        session = cached_session(f"sam-decoder-{_weights_key(decoder, image_pe)}.onnx", export,
                                 threads=threads or torch.get_num_threads(), log=log, cache_dir=cache_dir)
        return cls(decoder, session)

    def __call__(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings):
        args = (image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        torch = self._torch
        if sparse_prompt_embeddings.shape[0] != 1 or any(a.dtype != torch.float32 for a in args):
            return self.stock(*args)
        feed = {name: a.detach().contiguous().numpy() for name, a in zip(self._inputs, args)}
        masks, iou = self.session.run(None, feed)
        return torch.from_numpy(masks), torch.from_numpy(iou)


def load(model: Any) -> OnnxMaskDecoder | None:
    """The graph of `model`'s mask decoder on ONNX Runtime; None (stock decoder stays) when export or load fails."""
    try:
        return OnnxMaskDecoder.from_decoder(model.mask_decoder, model.prompt_encoder.get_dense_pe())
    except Exception as exc:  # noqa: BLE001 - any exporter failure leaves the stock decoder working
        log.warning("SAM decoder stays on PyTorch: ONNX export or load failed (%s)", first_line(exc))
        return None


@contextlib.contextmanager
def routed(model: Any, fast: OnnxMaskDecoder | None) -> Iterator[None]:
    """Within the block, `model.mask_decoder.predict_masks` runs `fast` (when given).

    An instance attribute shadows the method for the call only: the stock forward (mask choice)
    and SamPredictor (prompt encoding, upscaling) run as they are, and outside the block the
    model is untouched (it can be copied, saved or handed to other code).
    """
    if fast is None:
        yield
        return
    model.mask_decoder.predict_masks = fast
    try:
        yield
    finally:
        del model.mask_decoder.predict_masks


def _weights_key(decoder: Any, image_pe: Any) -> str:
    import torch

    return state_sha256(decoder, f"v{EXPORT_VERSION} torch {torch.__version__}", image_pe)[:24]


def _export(decoder: Any, image_pe: Any) -> bytes:
    import torch

    class PredictMasks(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = decoder

        def forward(self, image_embeddings, image_pe, sparse, dense):
            return type(self.decoder).predict_masks(self.decoder, image_embeddings, image_pe, sparse, dense)

    c, h, w = image_pe.shape[1:]
    example = (torch.zeros(1, c, h, w), image_pe.detach().float().cpu(), torch.zeros(1, 3, c), torch.zeros(1, c, h, w))
    tokens = torch.export.Dim("tokens", min=1, max=4096)  # clicks + box corners + padding point
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(PredictMasks().eval(), example, dynamo=True, verbose=False,
                                    input_names=["image_embeddings", "image_pe", "sparse", "dense"],
                                    output_names=["masks", "iou_pred"],
                                    dynamic_shapes=({}, {}, {1: tokens}, {}))
    return program.model_proto.SerializeToString()

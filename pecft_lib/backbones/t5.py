"""T5 for O-LoRA's paper profile: a generative encoder–decoder, not a pooled encoder.

O-LoRA trains LoRA on the ``q`` and ``v`` projections of every attention of the original T5-large
(cmnfriend/O-LoRA, commit 07117e1; its scripts load ``initial_model/t5-large``). :data:`T5_ARCHITECTURES` holds the
published configurations so that the exact architecture can be built without downloading anything
(random weights for dry runs, or on the ``meta`` device to count parameters).
"""

from __future__ import annotations

from transformers import T5Config, T5ForConditionalGeneration

from ..errors import CheckpointNotFoundError, UnknownNameError

T5_ARCHITECTURES: dict[str, dict] = {
    # The original T5 release (Raffel et al. 2020), as in the hub's `google-t5/t5-large` config.
    "t5-large": dict(
        d_model=1024, d_ff=4096, d_kv=64, num_heads=16, num_layers=24, num_decoder_layers=24,
        vocab_size=32128, relative_attention_num_buckets=32, dropout_rate=0.1, layer_norm_epsilon=1e-6,
        feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1,
    ),
}
HUB_IDS = {"t5-large": "google-t5/t5-large"}
LORA_TARGETS = r".*(SelfAttention|EncDecAttention)\.(q|v)"
"""``peft`` ``target_modules`` for O-LoRA: q and v of every self- and cross-attention."""


def create_t5(name: str = "t5-large", pretrained: bool = True, local_path: str | None = None) -> T5ForConditionalGeneration:
    """T5 by name; ``pretrained=False`` builds the published architecture with random weights.

    ``local_path`` is a folder saved by ``save_pretrained`` (for machines without internet).
    """
    if name not in T5_ARCHITECTURES:
        raise UnknownNameError("T5 model", name, T5_ARCHITECTURES)
    if not pretrained:
        return T5ForConditionalGeneration(T5Config(**T5_ARCHITECTURES[name]))
    source = local_path or HUB_IDS[name]
    try:
        return T5ForConditionalGeneration.from_pretrained(source, local_files_only=local_path is not None)
    except OSError as err:
        raise CheckpointNotFoundError(
            f"could not load {name} from {source} ({err}). Fix: run with internet access (hub id "
            f"{HUB_IDS[name]}), or save the model once with save_pretrained() and pass local_path=."
        ) from err

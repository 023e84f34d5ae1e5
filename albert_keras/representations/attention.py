"""Attention pictures: each head's attention probabilities in one layer, pieces on both axes.

ALBERT applies the same shared block in many layers; this shows what each application attends to.
The probabilities come from keras-hub's `TransformerEncoder` itself (`return_attention_scores`,
a public call argument), fed with the hidden state the encoder gives that layer, so they are the
ones the model uses (after softmax and padding mask; without dropout). matplotlib is an optional
extra (`pip install "albert-keras[plot]"`), needed only for `plot_attention`.
"""

import math
import os

import numpy as np

from albert_keras.errors import AlbertInputError

# Inches per panel side, and the figure's dots per inch.
PANEL_INCHES = 4.0
DPI = 100
MAX_COLUMNS = 4


def _resolve(model, spm_model, lowercase):
    """(encoder, Vocabulary) from a directory or a model object."""
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import vocabulary_path

    if isinstance(model, (str, os.PathLike)):
        from albert_keras.modeling.pretrained import load_encoder

        directory = os.fspath(model)
        model = load_encoder(directory)
        if spm_model is None:
            if vocabulary_path(directory) is None:
                raise AlbertInputError(f"{directory}: no vocabulary; attention pictures need one (spiece.model or vocab.txt)")
            spm_model = load_vocabulary(directory)
    elif hasattr(model, "encoder"):
        model = model.encoder
    if spm_model is None:
        raise AlbertInputError("spm_model: needed with a model object")
    return model, load_vocabulary(spm_model, lowercase=lowercase)


def block_applications(config):
    """The shared blocks in the order the encoder applies them: `[(layer, group, inner), ...]`.

    With `inner_group_num = 1` (every released ALBERT) the position in this list is the layer.

    Example:
    ```python
    block_applications(AlbertConfig(num_hidden_layers=3, num_hidden_groups=1))  # [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    ```
    """
    return [
        (layer, config.group_of_layer(layer), inner)
        for layer in range(config.num_hidden_layers)
        for inner in range(config.inner_group_num)
    ]


def attention_maps(model, text, layer=None, spm_model=None, lowercase=None):
    """Attention probabilities of every head of one layer for `[CLS] text [SEP]`.

    Args:
        model: a pretrained directory (any kind; its encoder is used) or a model object.
        text: raw text (truncated to the model's maximum length).
        layer: which block application, 0-based (the layer when `inner_group_num` is 1);
            default the last. Negative values count from the end.
        spm_model: the vocabulary (default: the directory's).
        lowercase: default: the directory's tokenizer.json.

    Returns:
        `(pieces, probabilities)`: the `T` pieces (`[CLS]` ... `[SEP]`) and float32
        `[heads, T, T]` (row: the attending piece, column: the piece attended to; rows sum to 1).

    Example:
    ```python
    pieces, probabilities = attention_maps("runs/quickstart/pretrain/pretrained", "The for statement loops.")
    probabilities.shape  # (heads, len(pieces), len(pieces))
    ```
    """
    import keras

    encoder, vocabulary = _resolve(model, spm_model, lowercase)
    config = encoder.config
    applications = block_applications(config)
    index = len(applications) - 1 if layer is None else int(layer)
    if not -len(applications) <= index < len(applications):
        raise AlbertInputError(f"--layer: {layer} is outside 0..{len(applications) - 1} for this model")
    index %= len(applications)
    ids = [vocabulary.cls_id] + vocabulary.encode(text)[: config.max_position_embeddings - 2] + [vocabulary.sep_id]
    features = {
        "token_ids": np.array([ids], np.int32),
        "segment_ids": np.zeros([1, len(ids)], np.int32),
        "padding_mask": np.ones([1, len(ids)], np.int32),
    }
    scores = None
    for position, (block, x) in enumerate(block_inputs(encoder, features)):
        if position == index:
            _, scores = block(x, padding_mask=features["padding_mask"], return_attention_scores=True, training=False)
            break
    pieces = [vocabulary.id_to_token(i) for i in ids]
    return pieces, np.asarray(keras.ops.convert_to_numpy(scores), np.float32)[0]


def block_inputs(encoder, features):
    """Yield `(block, hidden state entering it)` for each block application, in order.

    The first state comes from the encoder's own embedding sub-graph; each next one is the block's
    output, so after the last block the state is the encoder's `sequence_output`.

    Example:
    ```python
    for block, x in block_inputs(encoder, features):
        ...
    ```
    """
    import keras

    embed = keras.Model(encoder.inputs, encoder.get_layer("embedding_projection").output)
    x = embed(features, training=False)
    for _, group, inner in block_applications(encoder.config):
        block = encoder.transformer_layers[group][inner]
        yield block, x
        x = block(x, padding_mask=features["padding_mask"], training=False)
    yield None, x


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise AlbertInputError(
            'attention pictures need matplotlib: pip install "albert-keras[plot]" (or pip install matplotlib)'
        ) from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def grid_shape(heads, max_columns=MAX_COLUMNS):
    """`(rows, columns)` of the panel grid for `heads` panels.

    Example:
    ```python
    grid_shape(12)  # (3, 4)
    ```
    """
    columns = min(heads, max_columns)
    return math.ceil(heads / columns), columns


def plot_attention(pieces, probabilities, output, title=None):
    """Save one heatmap panel per head (rows: attending piece, columns: attended piece) as a PNG.

    The figure is `grid_shape(heads)` panels of `PANEL_INCHES` at `DPI`, so the image is
    `rows * 400` by `columns * 400` pixels. Written under a temporary name, renamed when complete.

    Returns:
        `{"path", "heads", "rows", "columns", "panels"}` (`panels`: axes holding a heatmap).

    Example:
    ```python
    plot_attention(*attention_maps(model_dir, "The for statement loops."), "attn.png")
    ```
    """
    from albert_keras.io_utils import atomic_write

    plt = _pyplot()
    heads = probabilities.shape[0]
    rows, columns = grid_shape(heads)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * PANEL_INCHES, rows * PANEL_INCHES), dpi=DPI,
                                squeeze=False)
    labels = [piece.replace("\u2581", "_") for piece in pieces]
    font = max(4, min(9, int(240 / max(len(pieces), 1))))
    for head in range(rows * columns):
        ax = axes[head // columns][head % columns]
        if head >= heads:
            ax.axis("off")
            continue
        # Each panel scaled to its own largest probability: near-uniform heads still show structure.
        ax.imshow(probabilities[head], cmap="viridis", vmin=0.0, vmax=float(probabilities[head].max()),
                  interpolation="nearest")
        ax.set_title(f"head {head}", fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=font)
        ax.set_yticks(range(len(labels)), labels, fontsize=font)
    if title:
        figure.suptitle(title, fontsize=11)
    # A fixed canvas (no tight bounding box), so the image size follows from the grid alone.
    figure.subplots_adjust(left=0.12, right=0.98, bottom=0.14, top=0.9, wspace=0.5, hspace=0.6)
    panels = sum(1 for ax in figure.axes if ax.images)
    with atomic_write(output, "wb") as f:
        figure.savefig(f, format="png", dpi=DPI)
    plt.close(figure)
    return {"path": os.fspath(output), "heads": heads, "rows": rows, "columns": columns, "panels": panels}


def attention_picture(model, text, output, layer=None, spm_model=None):
    """`albert-keras attention`: the attention of every head of one layer for `text`, as a PNG.

    Returns:
        the `plot_attention` summary, plus `layer` and `pieces`.

    Example:
    ```python
    attention_picture("runs/quickstart/pretrain/pretrained", "The for statement loops.", "attn.png", layer=0)
    ```
    """
    _pyplot()  # fail before loading the model when matplotlib is missing
    pieces, probabilities = attention_maps(model, text, layer=layer, spm_model=spm_model)
    chosen = "last" if layer is None else layer
    summary = plot_attention(pieces, probabilities, output,
                             title=f"layer {chosen}: {len(probabilities)} heads, {len(pieces)} pieces")
    summary.update(layer=chosen, pieces=pieces)
    return summary

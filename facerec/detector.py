"""Fast MTCNN face detector: the stock `mtcnn` 1.0 algorithm and weights, compiled.

`MTCNNDetector.detect` gives the same detections as `mtcnn.MTCNN().detect_faces` (same
boxes, scores, landmarks; bit-identical floats on the sample photos) for images up to
`max_side`, 3-5x faster on 2 cores (benchmarks/bench_detector.py), because it

- calls the package's own P-, R- and O-Net Keras models through `tf.function` with one
  input signature each (height and width left open, so new image sizes never retrace),
  instead of running them eagerly one Keras layer at a time;
- resizes each pyramid level inside the P-Net graph, in float32 (the stock package
  resizes a float64 copy; the values are the same: (x - 127.5) / 128 is exact in float32);
- crops all R-Net candidates and all O-Net candidates in one call each;
- redoes the stock post-processing in numpy with the same dtypes and operation order
  (including where the stock code silently computes in float32), and its non-greedy NMS
  rule block by block instead of with full N x N matrices.

It also fixes what DESIGN.md section 5 measured as broken or costly in the stock package:
pyramid levels whose short side is under 12 px are dropped (so `min_face_size` above 20
works), a network is never called with zero candidates, big images are detected on a copy
whose longest side is at most `max_side`, and `detect_permissive` is the second pass for
tight crops (black border, lower R-Net threshold).

TensorFlow and mtcnn are imported in the constructor, never at import time of this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from facerec.faces import LANDMARK_NAMES, Face

# Stock mtcnn 1.0 defaults (mtcnn/stages/stage_*.py): data, not magic numbers below.
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8)  # P-Net, R-Net, O-Net face-probability thresholds
DEFAULT_SCALE_FACTOR = 0.709
NMS_PNET_PER_SCALE = 0.5  # IoU ("union"), per pyramid level
NMS_PNET_ALL = 0.7  # IoU ("union"), across levels
NMS_RNET = 0.7  # IoU ("union")
NMS_ONET = 0.7  # intersection over the smaller box ("min")
PNET_CELL = 12  # P-Net window, px; also the smallest pyramid level
PNET_STRIDE = 2

# Second pass (DESIGN.md section 5): tight crops are found after adding a black border of
# half the image size on each side, with a lower R-Net threshold.
PERMISSIVE_PAD_FRACTION = 0.5
PERMISSIVE_RNET_THRESHOLD = 0.6

# Stock column layout of a candidate row: image id, x1, y1, x2, y2, score, then the
# landmarks as x of the 5 points followed by y of the 5 points.
_X1, _Y1, _X2, _Y2, _SCORE = 1, 2, 3, 4, 5
_LM_X = slice(6, 11)
_LM_Y = slice(11, 16)
_XS = [_X1, _X2, *range(6, 11)]  # every x column: box and landmarks
_YS = [_Y1, _Y2, *range(11, 16)]


def _sort_desc(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Descending sort exactly as mtcnn's `sort_by_scores` (same argsort, reversed)."""
    return rows[np.argsort(scores)[::-1]]


def _nms_keep(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Indices kept by mtcnn 1.0's NMS rule, for boxes already in the order it uses.

    The stock rule is not the greedy one: box j is dropped when ANY earlier box i < j
    overlaps it by more than `threshold`, even if box i was itself dropped. This computes
    the same answer a block of rows at a time, without the N x N matrices at once.
    """
    n = boxes.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    dropped = np.zeros(n, dtype=bool)
    block = 256
    for start in range(0, n - 1, block):
        i = slice(start, min(start + block, n - 1))
        # Earlier boxes i against every later box j > i (only the upper triangle counts).
        inter_w = np.maximum(
            0, np.minimum(x2[i, None], x2[None, start + 1 :]) - np.maximum(x1[i, None], x1[None, start + 1 :])
        )
        inter_h = np.maximum(
            0, np.minimum(y2[i, None], y2[None, start + 1 :]) - np.maximum(y1[i, None], y1[None, start + 1 :])
        )
        inter = inter_w * inter_h
        if method == "union":
            denom = area[i, None] + area[None, start + 1 :] - inter
        else:
            denom = np.minimum(area[i, None], area[None, start + 1 :])
        with np.errstate(divide="ignore", invalid="ignore"):
            over = inter / denom > threshold
        rows = np.arange(i.start, i.stop)[:, None]
        cols = np.arange(start + 1, n)[None, :]
        over &= cols > rows
        dropped[start + 1 :] |= over.any(axis=0)
    return np.flatnonzero(~dropped)


def _nms(rows: np.ndarray, threshold: float, method: str, initial_sort: bool) -> np.ndarray:
    """mtcnn's `smart_nms_from_bboxes` for the rows of one image."""
    if rows.shape[0] == 0:
        return rows
    if initial_sort:
        rows = _sort_desc(rows, rows[:, _SCORE])
    return rows[_nms_keep(rows[:, _X1 : _Y2 + 1], threshold, method)]


def _to_square(rows: np.ndarray) -> np.ndarray:
    """mtcnn's `resize_to_square`: grow the shorter side around the centre."""
    rows = rows.copy()
    h = rows[:, _Y2] - rows[:, _Y1]
    w = rows[:, _X2] - rows[:, _X1]
    side = np.maximum(w, h)
    rows[:, _X1] = rows[:, _X1] + w * 0.5 - side * 0.5
    rows[:, _Y1] = rows[:, _Y1] + h * 0.5 - side * 0.5
    rows[:, _X2] = rows[:, _X1] + side
    rows[:, _Y2] = rows[:, _Y1] + side
    return rows


def _refine(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """mtcnn's `adjust_bboxes`: apply regression offsets scaled by the box size (+1).

    In the stock package the offsets are a float32 tensor, so TensorFlow does the
    multiply and the add in float32; the same here, for the same boxes.
    """
    rows = rows.copy()
    w = rows[:, _X2] - rows[:, _X1] + 1
    h = rows[:, _Y2] - rows[:, _Y1] + 1
    sizes = np.stack([w, h, w, h], axis=-1).astype(np.float32)
    coords = rows[:, _X1 : _Y2 + 1].astype(np.float32)
    rows[:, _X1 : _Y2 + 1] = coords + offsets.astype(np.float32) * sizes
    return rows


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image of shape HxWx3, got {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


class MTCNNDetector:
    """MTCNN face detector with the stock mtcnn 1.0 results, compiled with tf.function.

    Construct once per process (loading TensorFlow and the three nets takes seconds).
    `detect` and `detect_permissive` may be called from several threads: the pipeline
    runs under a lock (on two cores one detection already uses both).
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        scale_factor: float = DEFAULT_SCALE_FACTOR,
        max_side: int = 1024,
        permissive_rnet_threshold: float = PERMISSIVE_RNET_THRESHOLD,
    ) -> None:
        if min_face_size < 1:
            raise ValueError("min_face_size must be positive")
        if not 0 < scale_factor < 1:
            raise ValueError("scale_factor must be between 0 and 1")
        if max_side < PNET_CELL:
            raise ValueError(f"max_side must be at least {PNET_CELL}")
        if len(thresholds) != 3:
            raise ValueError("thresholds must be (pnet, rnet, onet)")
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.max_side = int(max_side)
        self.permissive_rnet_threshold = float(permissive_rnet_threshold)
        self._lock = threading.Lock()

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        tf.get_logger().setLevel("ERROR")
        self._tf = tf
        pnet, rnet, onet = (stage().model for stage in (StagePNet, StageRNet, StageONet))
        image_spec = tf.TensorSpec([1, None, None, 3], tf.float32)
        boxes_spec = tf.TensorSpec([None, 4], tf.float32)

        def pnet_pyramid(image, sizes):
            # One graph for every level: one call per image instead of one per level,
            # and TensorFlow can run the small levels side by side.
            outputs = []
            for k in range(sizes.shape[0]):
                level = tf.image.resize(image, sizes[k], method=tf.image.ResizeMethod.AREA)
                reg, prob = pnet(level)
                outputs += [reg[0], prob[0, :, :, 1]]
            return outputs

        def crops(image, boxes, side):
            index = tf.zeros(tf.shape(boxes)[:1], tf.int32)
            return tf.image.crop_and_resize(image, boxes, index, (side, side))

        @tf.function(input_signature=[image_spec, boxes_spec])
        def rnet_crops(image, boxes):
            reg, prob = rnet(crops(image, boxes, 24))
            return reg, prob[:, 1]

        @tf.function(input_signature=[image_spec, boxes_spec])
        def onet_crops(image, boxes):
            reg, landmarks, prob = onet(crops(image, boxes, 48))
            return reg, landmarks, prob[:, 1]

        self._pnet_pyramid = tf.function(pnet_pyramid)
        self._pnet_by_levels: dict = {}  # number of levels -> traced graph (a few dozen at most)
        self._image_spec = image_spec
        self._rnet, self._onet = rnet_crops, onet_crops
        self._warm_up()

    # Public API -------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 HxWx3 image, largest first (box in image pixels).

        The same faces as stock `mtcnn.MTCNN().detect_faces` for images whose longest side
        is at most `max_side`; larger images are detected on a copy shrunk to that size.
        """
        image = _as_rgb_uint8(image)
        rows = self._detect_rows(image, self.thresholds, pad_fraction=0.0)
        return self._faces(rows, image.shape[0], image.shape[1])

    def detect_permissive(self, image: np.ndarray) -> list[Face]:
        """Second pass for photos where `detect` found nothing, e.g. tight face crops.

        Adds a black border of half the image size on each side and lowers the R-Net
        threshold; boxes are mapped back to the original image and clipped to it.
        """
        image = _as_rgb_uint8(image)
        pnet_t, _, onet_t = self.thresholds
        thresholds = (pnet_t, self.permissive_rnet_threshold, onet_t)
        rows = self._detect_rows(image, thresholds, pad_fraction=PERMISSIVE_PAD_FRACTION)
        return self._faces(rows, image.shape[0], image.shape[1])

    __call__ = detect

    # Pipeline ---------------------------------------------------------------------------

    def _detect_rows(
        self, image: np.ndarray, thresholds: tuple[float, float, float], pad_fraction: float
    ) -> np.ndarray:
        """Final candidate rows (stock layout, float64) in coordinates of `image`.

        The image is shrunk first if needed so that, with a border of `pad_fraction` of its
        size on each side, its longest side is at most `max_side`.
        """
        height, width = image.shape[:2]
        limit = int(self.max_side / (1 + 2 * pad_fraction))
        small = image
        if max(height, width) > limit:
            import cv2

            ratio = limit / max(height, width)
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        pad_y = round(small.shape[0] * pad_fraction)
        pad_x = round(small.shape[1] * pad_fraction)
        padded = small
        if pad_x or pad_y:
            padded = np.zeros((small.shape[0] + 2 * pad_y, small.shape[1] + 2 * pad_x, 3), np.uint8)
            padded[pad_y : pad_y + small.shape[0], pad_x : pad_x + small.shape[1]] = small
        with self._lock:
            rows = self._run(padded, thresholds)
        if rows.shape[0] and padded is not image:
            sx = width / small.shape[1]
            sy = height / small.shape[0]
            for cols, pad, factor in ((_XS, pad_x, sx), (_YS, pad_y, sy)):
                rows[:, cols] = (rows[:, cols] - pad) * factor
        return rows

    def _scales(self, height: int, width: int) -> list[tuple[float, np.ndarray]]:
        """Pyramid levels (scale, int32 [h, w]) as the stock package builds them.

        Stock mtcnn 1.0 derives the number of levels from the image size only; levels
        whose short side falls under 12 px (min_face_size > 20) are dropped here, as the
        original MTCNN does, instead of making the whole image fail.
        """
        min_dim = min(width, height)
        if min_dim < PNET_CELL:
            return []
        count = round(-((np.log(min_dim / PNET_CELL) / np.log(self.scale_factor)) + 1))
        scales = (PNET_CELL / self.min_face_size) * self.scale_factor ** np.arange(count)
        levels = []
        for scale in scales:
            # tf.image.resize truncates a float size, as the stock package passes it.
            size = (np.asarray([height, width]) * scale).astype(np.int32)
            if size.min() >= PNET_CELL:
                levels.append((float(scale), size))
        return levels

    def _warm_up(self) -> None:
        """Trace the three graphs now, so that the first request does not pay for it.

        The P-Net graph is traced once per number of pyramid levels (at most about 14 for
        a 1024 px image); only the one-level graph is traced here, the others on first use
        (~0.3 s each).
        """
        tf = self._tf
        image = tf.zeros([1, PNET_CELL, PNET_CELL, 3], tf.float32)
        self._pnet_graph(1)(image, tf.constant([[PNET_CELL, PNET_CELL]], tf.int32))
        boxes = tf.constant([[0.0, 0.0, 1.0, 1.0]], tf.float32)
        self._rnet(image, boxes)
        self._onet(image, boxes)

    def warm_up_all_levels(self) -> None:
        """Trace and run the P-Net graph for every pyramid depth an image up to max_side
        can need (~0.3 s each, a few seconds in all), so that no request of a long-running
        process pays for a photo size it has not seen before."""
        tf = self._tf
        image = tf.zeros([1, 4 * PNET_CELL, 4 * PNET_CELL, 3], tf.float32)
        for count in range(1, len(self._scales(self.max_side, self.max_side)) + 1):
            if count not in self._pnet_by_levels:
                sizes = tf.constant([[PNET_CELL, PNET_CELL]] * count, tf.int32)
                self._pnet_graph(count)(image, sizes)

    def _run(self, image: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
        tf = self._tf
        t_pnet, t_rnet, t_onet = thresholds
        empty = np.empty((0, 16))
        height, width = image.shape[:2]
        levels = self._scales(height, width)
        if not levels:
            return empty
        normalized = tf.constant(((image.astype(np.float32) - 127.5) / 128)[None])

        # Stage 1: P-Net over the pyramid.
        sizes = np.stack([size for _, size in levels])
        outputs = self._pnet_graph(len(levels))(normalized, tf.constant(sizes))
        per_level = []
        for k, (scale, _) in enumerate(levels):
            reg, prob = outputs[2 * k], outputs[2 * k + 1].numpy()
            ys, xs = np.nonzero(prob > t_pnet)
            if ys.size == 0:
                continue
            offsets = reg.numpy()[ys, xs].T.astype(np.float64)
            # Same arithmetic, in the same order, as mtcnn's generate_bounding_box: its
            # cell spans [2i + 1, 2i + 12], so the regression is scaled by 11, not 12.
            left, top = xs * PNET_STRIDE + 1, ys * PNET_STRIDE + 1
            right, bottom = xs * PNET_STRIDE + PNET_CELL, ys * PNET_STRIDE + PNET_CELL
            side = PNET_CELL - 1
            x1 = (left + offsets[0] * side) / scale
            y1 = (top + offsets[1] * side) / scale
            x2 = (right + offsets[2] * side) / scale
            y2 = (bottom + offsets[3] * side) / scale
            rows = np.stack([np.zeros_like(x1), x1, y1, x2, y2, prob[ys, xs]], axis=0).T
            rows = _sort_desc(rows, rows[:, -1])
            per_level.append(_nms(rows, NMS_PNET_PER_SCALE, "union", initial_sort=False))
        if not per_level:
            return empty
        rows = _to_square(_nms(np.concatenate(per_level), NMS_PNET_ALL, "union", initial_sort=True))
        if rows.shape[0] == 0:
            return empty

        # Stage 2: R-Net on all candidates at once.
        reg, prob = self._rnet(normalized, self._crop_boxes(rows, height, width))
        rows[:, _SCORE] = prob.numpy()
        rows = _refine(rows, reg.numpy())
        rows = rows[rows[:, _SCORE] > t_rnet]
        if rows.shape[0] == 0:
            return empty
        rows = _to_square(_nms(rows, NMS_RNET, "union", initial_sort=True))

        # Stage 3: O-Net on all candidates at once.
        reg, landmarks, prob = self._onet(normalized, self._crop_boxes(rows, height, width))
        landmarks = landmarks.numpy().copy()  # float32: the stock code stores them so
        w = rows[:, _X2 : _X2 + 1] - rows[:, _X1 : _X1 + 1] + 1
        h = rows[:, _Y2 : _Y2 + 1] - rows[:, _Y1 : _Y1 + 1] + 1
        landmarks[:, 0:5] = w * landmarks[:, 0:5] + rows[:, _X1 : _X1 + 1] - 1
        landmarks[:, 5:10] = h * landmarks[:, 5:10] + rows[:, _Y1 : _Y1 + 1] - 1
        rows[:, _SCORE] = prob.numpy()
        rows = np.concatenate([_refine(rows, reg.numpy()), landmarks], axis=-1)
        rows = rows[rows[:, _SCORE] > t_onet]
        return _nms(rows, NMS_ONET, "min", initial_sort=True)

    def _pnet_graph(self, count: int):
        """The P-Net graph for `count` pyramid levels, traced once per count."""
        graph = self._pnet_by_levels.get(count)
        if graph is None:
            sizes_spec = self._tf.TensorSpec([count, 2], self._tf.int32)
            graph = self._pnet_pyramid.get_concrete_function(self._image_spec, sizes_spec)
            self._pnet_by_levels[count] = graph
        return graph

    @staticmethod
    def _crop_boxes(rows: np.ndarray, height: int, width: int) -> np.ndarray:
        """Boxes for tf.image.crop_and_resize: [y1/H, x1/W, y2/H, x2/W], as mtcnn's."""
        scale = np.asarray([[height, width, height, width]])
        return (rows[:, [_Y1, _X1, _Y2, _X2]] / scale).astype(np.float32)

    @staticmethod
    def _faces(rows: np.ndarray, height: int, width: int) -> list[Face]:
        """Faces from final rows, rounded and clipped as mtcnn's limit_bboxes and to_json."""
        faces = []
        for row in rows:
            x1 = min(max(row[_X1], 0), width - 1)
            x2 = min(max(row[_X2], 0), width - 1)
            y1 = min(max(row[_Y1], 0), height - 1)
            y2 = min(max(row[_Y2], 0), height - 1)
            # Stock rounds x, y, width and height separately.
            x, y, w, h = (int(v) for v in np.asarray([x1, y1, x2 - x1, y2 - y1]).round())
            box = (x, y, min(x + w, width), min(y + h, height))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            xs = np.round(row[_LM_X]).astype(int)
            ys = np.round(row[_LM_Y]).astype(int)
            landmarks = {name: (int(xs[k]), int(ys[k])) for k, name in enumerate(LANDMARK_NAMES)}
            faces.append(Face(box=box, score=float(row[_SCORE]), landmarks=landmarks))
        # Stable: equal areas keep the stock order (score, descending).
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces

import numpy as np
import pytest

from dex_bias.explain.regions import (
    BACKGROUND,
    N_REGIONS,
    REGION_INDEX,
    REGION_NAMES,
    paint_regions,
    region_areas,
    region_map,
)
from tests.explain.conftest import crop_landmarks

CONTRACT_NAMES = (
    "nose left_eye_area right_eye_area left_inner_eye right_inner_eye left_cheek right_cheek "
    "mouth chin top_band left_band right_band bottom_band background"
).split()


def test_region_names_are_the_contract_names():
    assert list(REGION_NAMES) == CONTRACT_NAMES


@pytest.mark.parametrize("size", [64, 224])
def test_every_pixel_gets_exactly_one_known_region(size):
    labels = region_map(crop_landmarks(size), size)
    assert labels.shape == (size, size)
    assert labels.min() >= 0 and labels.max() < N_REGIONS  # no pixel left unlabelled (-1)
    # a frontal face in the middle of the crop shows every region
    assert (region_areas(labels) > 0).all(), dict(zip(REGION_NAMES, region_areas(labels)))
    assert region_areas(labels).sum() == size * size


def test_regions_sit_where_the_face_parts_are(points64):
    labels = region_map(points64, 64)

    def label_at(point):
        x, y = np.rint(point).astype(int)
        return REGION_NAMES[labels[y, x]]

    assert label_at(points64[36:42].mean(axis=0)) == "right_inner_eye"  # dlib 36-41: image left = subject's right
    assert label_at(points64[42:48].mean(axis=0)) == "left_inner_eye"
    assert label_at(points64[30]) == "nose"
    assert label_at(points64[[62, 66]].mean(axis=0)) == "mouth"
    assert label_at((points64[8] + points64[57]) / 2) == "chin"
    assert label_at((points64[2] + points64[31]) / 2) == "right_cheek"
    assert label_at((points64[14] + points64[35]) / 2) == "left_cheek"
    assert labels[0, 0] == BACKGROUND
    assert REGION_NAMES[labels[int(points64[19, 1]) - 3, int(points64[19, 0])]] == "top_band"
    assert REGION_NAMES[labels[int(points64[3, 1]), int(points64[3, 0]) - 2]] == "right_band"
    assert REGION_NAMES[labels[int(points64[13, 1]), int(points64[13, 0]) + 2]] == "left_band"
    assert REGION_NAMES[labels[min(63, int(points64[8, 1]) + 2), int(points64[8, 0])]] == "bottom_band"


def test_regions_cut_off_by_the_crop_are_empty():
    # The face shifted half a crop down: the chin, mouth and bottom band leave the crop.
    labels = region_map(crop_landmarks(64, shift=(0.0, 0.55)), 64)
    area = region_areas(labels)
    assert area[REGION_INDEX["chin"]] == 0 and area[REGION_INDEX["bottom_band"]] == 0
    assert area[REGION_INDEX["top_band"]] > 0
    assert area.sum() == 64 * 64


def test_infinite_bands_leave_no_background(points64):
    labels = region_map(points64, 64, band_width=float("inf"))
    assert region_areas(labels)[BACKGROUND] == 0
    assert labels.min() >= 0


def test_paint_regions_puts_each_value_on_its_region(points64):
    labels = region_map(points64, 64)
    values = np.arange(N_REGIONS, dtype=float) * 1.5
    painted = paint_regions(values, labels)
    assert np.array_equal(painted, labels * 1.5)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match="68, 2"):
        region_map(np.zeros((5, 2)), 64)

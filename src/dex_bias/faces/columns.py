"""Column names of the ``landmarks`` contract (CONTRIBUTING.md), in one light module: the
alignment workers import it without pandas."""

#: The six affine coefficients of the crop transform, in the order ``[[a, b, c], [d, e, f]]``.
CROP_COLUMNS: tuple[str, ...] = ("crop_a", "crop_b", "crop_c", "crop_d", "crop_e", "crop_f")
#: Number of dlib landmarks (iBUG 300-W 68-point scheme).
N_LANDMARKS = 68
LANDMARK_X_COLUMNS: tuple[str, ...] = tuple(f"x_{i:02d}" for i in range(N_LANDMARKS))
LANDMARK_Y_COLUMNS: tuple[str, ...] = tuple(f"y_{i:02d}" for i in range(N_LANDMARKS))
#: dlib's 5-point landmarks (``shape_predictor_5_face_landmarks``: the outer and inner corner of
#: each eye, and the base of the nose), fitted where dlib's own age and gender networks fit them.
N_FIVE_POINTS = 5
FIVE_POINT_X_COLUMNS: tuple[str, ...] = tuple(f"x5_{i}" for i in range(N_FIVE_POINTS))
FIVE_POINT_Y_COLUMNS: tuple[str, ...] = tuple(f"y5_{i}" for i in range(N_FIVE_POINTS))

"""AHA segments, per-segment statistics and the bull's-eye (cmrlib.aha).

Synthetic rings whose answer is known analytically, in both handednesses of the image
geometry (the rotation sense is decided from the LPS direction, not from the pixels), the
apical 4-segment rule, levels by thirds, statistics against numpy, the PNG, bad input, and
a cross-check against the phantom's own AHA map.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from cmrlib import aha
from cmrlib.errors import InputError

N = 161  # ring image size (pixels)
C = 80.0  # centre [column, row]
R_IN, R_OUT = 40.0, 60.0


def ring(n: int = N, centre=(C, C), r_in: float = R_IN, r_out: float = R_OUT) -> np.ndarray:
    rr, cc = np.mgrid[0:n, 0:n]
    d = np.hypot(cc - centre[0], rr - centre[1])
    return (d >= r_in) & (d < r_out)


def screen_ccw_deg(n: int = N, centre=(C, C)) -> np.ndarray:
    """Angle of every pixel counter-clockwise on the screen (rows run down), 0 = right."""
    rr, cc = np.mgrid[0:n, 0:n]
    return np.mod(np.degrees(np.arctan2(-(rr - centre[1]), cc - centre[0])), 360.0)


def point_at(angle_deg: float, radius: float = R_OUT, centre=(C, C)) -> list[float]:
    """[column, row] of a point at a screen-CCW angle."""
    a = math.radians(angle_deg)
    return [centre[0] + radius * math.cos(a), centre[1] - radius * math.sin(a)]


def circ_dist(a, b):
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


# ---- rings in the standard display ------------------------------------------------------------
@pytest.mark.parametrize("level, offset", [("basal", 0), ("mid", 6)])
@pytest.mark.parametrize("ins_deg", [120.0, 97.0, 200.0])
def test_basal_mid_six_sixty_degree_sectors_counter_clockwise_from_the_insertion(level, offset, ins_deg):
    """Standard display (anterior up, septum left): from the insertion point counter-clockwise
    on the screen come anteroseptal, inferoseptal, inferior, inferolateral, anterolateral,
    anterior, 60° each; the insertion point is the anterior | anteroseptal boundary."""
    m = ring()
    seg = aha.aha_segments(m, [C, C], point_at(ins_deg), level)
    assert seg.dtype.kind == "i" and set(np.unique(seg[~m])) == {0}
    ang = screen_ccw_deg()
    rel = np.mod(ang - ins_deg, 360.0)
    order = [2, 3, 4, 5, 6, 1]
    total = int(m.sum())
    for k, s in enumerate(order):
        inside = m & (rel > 60 * k + 0.5) & (rel < 60 * (k + 1) - 0.5)
        assert np.all(seg[inside] == s + offset), (s, np.unique(seg[inside]))
        # each segment holds a sixth of the ring (pixel discretisation: within 3 %)
        assert abs((seg == s + offset).sum() - total / 6) < 0.03 * total / 6
    # the boundary angle at the insertion point: just counter-clockwise anteroseptal, just clockwise anterior
    just_ccw = m & (rel > 0.5) & (rel < 5)
    just_cw = m & (rel > 355) & (rel < 359.5)
    assert np.all(seg[just_ccw] == 2 + offset) and np.all(seg[just_cw] == 1 + offset)


@pytest.mark.parametrize("ins_deg", [120.0, 135.0])
def test_apical_four_segments_septal_centred_60_degrees_past_the_insertion(ins_deg):
    m = ring()
    seg = aha.aha_segments(m, [C, C], point_at(ins_deg, 30.0), "apical")  # point inside the cavity is fine
    ang = screen_ccw_deg()
    assert set(np.unique(seg[m])) == {13, 14, 15, 16}
    total = int(m.sum())
    for s, centre in ((14, 60.0), (15, 150.0), (16, 240.0), (13, 330.0)):
        a = ang[seg == s]
        mean = math.degrees(math.atan2(np.sin(np.radians(a)).mean(), np.cos(np.radians(a)).mean()))
        assert circ_dist(mean, ins_deg + centre) < 0.5, (s, mean)
        assert circ_dist(a, ins_deg + centre).max() <= 45.0 + 0.5
        assert abs((seg == s).sum() - total / 4) < 0.03 * total / 4
    # the septal segment starts 15° past the insertion point
    rel = np.mod(ang - ins_deg, 360.0)
    assert np.all(seg[m & (rel > 15.5) & (rel < 20)] == 14) and np.all(seg[m & (rel > 10) & (rel < 14.5)] == 13)


def test_apex_level_is_segment_17_everywhere():
    m = ring(r_in=0.0, r_out=20.0)
    seg = aha.aha_segments(m, [C, C], point_at(120.0, 20.0), "apex")
    assert np.all(seg[m] == 17) and np.all(seg[~m] == 0)
    assert np.array_equal(aha.aha_segments(m, None, None, "apex"), seg)  # the cap needs no landmarks


def test_anisotropic_pixels_use_physical_angles():
    """With 2 mm columns and 1 mm rows an ellipse in pixels is a circle in mm: the sectors are
    60° in mm, so the physical 'pure inferior' direction (straight down) is inferior."""
    rr, cc = np.mgrid[0:N, 0:N]
    d = np.hypot((cc - C) * 2.0, (rr - C) * 1.0)
    m = (d >= R_IN) & (d < R_OUT)
    # insertion at 120° physical: dx = cos120 * r (mm) -> columns / 2
    ins = [C + R_OUT * math.cos(math.radians(120)) / 2.0, C - R_OUT * math.sin(math.radians(120))]
    seg = aha.aha_segments(m, [C, C], ins, "basal", spacing=(2.0, 1.0))
    phys = np.mod(np.degrees(np.arctan2(-(rr - C) * 1.0, (cc - C) * 2.0)), 360.0)
    rel = np.mod(phys - 120.0, 360.0)
    for k, s in enumerate([2, 3, 4, 5, 6, 1]):
        inside = m & (rel > 60 * k + 1) & (rel < 60 * (k + 1) - 1)
        assert np.all(seg[inside] == s)


# ---- handedness from the LPS geometry -----------------------------------------------------------
def heart_frame():
    """A realistic LV axis (base -> apex: left, anterior, inferior) and the in-plane lateral
    (e_u) / anterior (e_v) axes, right-handed (e_u x e_v = apex)."""
    n = np.array([0.57, -0.47, -0.62])
    n /= np.linalg.norm(n)
    e_u = np.cross(n, [0.0, 1.0, 0.0])
    e_u /= np.linalg.norm(e_u)
    if e_u[0] < 0:
        e_u = -e_u
    e_v = np.cross(n, e_u)
    return e_u, e_v, n


def rot(v, axis, deg):
    a = math.radians(deg)
    return v * math.cos(a) + np.cross(axis, v) * math.sin(a) + axis * np.dot(axis, v) * (1 - math.cos(a))


def _expected_from_anatomy(phi: np.ndarray, ins_phi: float, level: str) -> np.ndarray:
    """Expected AHA labels from anatomical angles (CCW viewed from the apex: lateral 0°,
    anterior 90°, septum 180°, inferior 270°)."""
    rel = np.mod(phi - ins_phi, 360.0)
    if level == "apical":
        return np.array([14, 15, 16, 13])[(np.mod(rel - 15.0, 360.0) // 90).astype(int) % 4]
    return np.array([2, 3, 4, 5, 6, 1])[(rel // 60).astype(int) % 6] + (6 if level == "mid" else 0)


def _acquire(col_dir, row_dir, slice_dir, ins_phi=120.0, n=N, px=1.5):
    """Pixels of a SAX plane through the LV centre written with the given axes: the myocardial
    ring, each pixel's anatomical angle and the landmarks in [column, row] pixels."""
    e_u, e_v, _ = heart_frame()
    centre_lps = np.array([40.0, -50.0, -10.0])
    origin = centre_lps - (n - 1) / 2.0 * px * (col_dir + row_dir)
    rr, cc = np.mgrid[0:n, 0:n]
    p = origin + cc[..., None] * px * col_dir + rr[..., None] * px * row_dir
    d = p - centre_lps
    x, y = d @ e_u, d @ e_v
    r = np.hypot(x, y)
    myo = (r >= 25.0) & (r < 35.0)
    phi = np.mod(np.degrees(np.arctan2(y, x)), 360.0)
    ins_lps = centre_lps + 35.0 * (math.cos(math.radians(ins_phi)) * e_u + math.sin(math.radians(ins_phi)) * e_v)

    def to_px(q):
        return [float((q - origin) @ col_dir / px), float((q - origin) @ row_dir / px)]

    direction = np.column_stack([col_dir, row_dir, slice_dir])
    return myo, phi, to_px(centre_lps), to_px(ins_lps), direction


def _geometries():
    e_u, e_v, n = heart_frame()
    yield "standard (det -1, slices base->apex)", e_u, -e_v, n
    yield "standard, slices apex->base (det +1)", e_u, -e_v, -n
    yield "mirrored columns (septum on the right)", -e_u, -e_v, n
    yield "mirrored rows (upside down, anterior at the bottom)", e_u, e_v, n
    yield "rotated 180° in plane", -e_u, e_v, n
    yield "FOV rotated 35°", rot(e_u, n, 35.0), -rot(e_v, n, 35.0), n
    yield "mirrored and rotated 70°", -rot(e_u, n, 70.0), -rot(e_v, n, 70.0), -n
    yield "transposed (columns anterior-down, rows lateral)", -e_v, e_u, n


GEOMETRIES = list(_geometries())


@pytest.mark.parametrize("level", ["basal", "mid", "apical"])
@pytest.mark.parametrize("name, col_dir, row_dir, slice_dir", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_segments_follow_patient_anatomy_in_every_orientation(name, col_dir, row_dir, slice_dir, level):
    """Whatever the pixel layout (mirrored, rotated, transposed, either slice-axis sign), the
    segments are those of the patient's anatomy: from the anterior insertion point through the
    septum, counter-clockwise viewed from the apex."""
    myo, phi, centre, ins, direction = _acquire(col_dir, row_dir, slice_dir)
    seg = aha.aha_segments(myo, centre, ins, level, direction=direction)
    expected = _expected_from_anatomy(phi[myo], 120.0, level)
    # pixels exactly on a segment boundary (ties of the angle, e.g. on an axis) may go either way
    width, start = (90.0, 15.0) if level == "apical" else (60.0, 0.0)
    frac = np.mod(phi[myo] - 120.0 - start, width)
    clear = np.minimum(frac, width - frac) > 1e-6
    assert clear.mean() > 0.97
    assert np.array_equal(seg[myo][clear], expected[clear]), name
    # anatomical spot checks (insertion at 120°): septum, anterior, inferior, lateral
    def label_at(deg):
        return np.bincount(seg[myo & (circ_dist(phi, deg) < 3)]).argmax()
    if level == "apical":
        assert [label_at(a) for a in (180, 90, 270, 0)] == [14, 13, 15, 16]
    else:
        off = 6 if level == "mid" else 0
        assert [label_at(a) for a in (90, 150, 210, 270, 330, 30)] == [k + off for k in (1, 2, 3, 4, 5, 6)]


def test_mirrored_acquisition_gives_the_same_anatomical_segments():
    """The same anatomy written with left-right flipped pixels and the column axis negated in
    the direction matrix: identical segments (flipped back); ignoring the geometry would swap
    septum and lateral wall."""
    e_u, e_v, n = heart_frame()
    myo, _, centre, ins, direction = _acquire(e_u, -e_v, n)
    seg = aha.aha_segments(myo, centre, ins, "mid", direction=direction)
    flipped_dir = direction.copy()
    flipped_dir[:, 0] *= -1
    assert np.sign(np.linalg.det(flipped_dir)) == -np.sign(np.linalg.det(direction))
    cols = myo.shape[1]
    mirror = lambda p: [cols - 1 - p[0], p[1]]  # noqa: E731
    seg_f = aha.aha_segments(myo[:, ::-1], mirror(centre), mirror(ins), "mid", direction=flipped_dir)
    assert np.array_equal(seg_f[:, ::-1], seg)
    wrong = aha.aha_segments(myo[:, ::-1], mirror(centre), mirror(ins), "mid", direction=direction)
    assert np.mean(wrong[:, ::-1][myo] == seg[myo]) < 0.5


def test_display_sign_and_long_axis_planes_refused():
    e_u, e_v, n = heart_frame()
    assert aha.display_sign(None) == 1
    assert aha.display_sign(np.column_stack([e_u, -e_v, n])) == 1
    assert aha.display_sign(np.column_stack([-e_u, -e_v, n])) == -1
    # a plane holding the long axis (a four-chamber-like view): refused with a reason
    with pytest.raises(InputError, match="not a short-axis plane"):
        aha.display_sign(np.column_stack([e_u, n, np.cross(e_u, n)]))
    m = ring()
    with pytest.raises(InputError, match="short-axis"):
        aha.aha_segments(m, [C, C], point_at(120), "mid", direction=np.column_stack([n, e_v, np.cross(n, e_v)]))


# ---- a stack -------------------------------------------------------------------------------------
def test_aha_volume_reports_slices_without_landmarks():
    m = np.stack([ring(), ring(), np.zeros((N, N), bool), ring()])
    skipped: list[dict] = []
    vol = aha.aha_volume(m, [[C, C], None, [C, C], [C, C]], [point_at(120), point_at(120), point_at(120), point_at(120)],
                         ["basal", "mid", "mid", None], skipped=skipped)
    assert vol.shape == m.shape
    assert set(np.unique(vol[0][m[0]])) == set(range(1, 7))
    assert not vol[1].any() and not vol[2].any() and not vol[3].any()
    assert [s["index"] for s in skipped] == [1, 2, 3]
    assert "no landmarks" in skipped[0]["reason"] and "no myocardium" in skipped[1]["reason"]
    cap = aha.aha_volume(m[:1], [None], [None], ["apex"])
    assert np.all(cap[0][m[0]] == 17)
    with pytest.raises(InputError, match="entries for 4 slices"):
        aha.aha_volume(m, [[C, C]] * 3, [point_at(120)] * 4, ["mid"] * 4)


# ---- levels ----------------------------------------------------------------------------------
def test_slice_levels_by_thirds():
    nine = aha.slice_levels([10.0 * k for k in range(9)])
    assert nine == ["basal"] * 3 + ["mid"] * 3 + ["apical"] * 3
    ten = aha.slice_levels(list(np.arange(10) * 8.0 + 3.0))
    assert ten == ["basal"] * 3 + ["mid"] * 4 + ["apical"] * 3
    # order of the list does not matter: positions increase towards the apex
    assert aha.slice_levels([80.0, 0.0, 40.0]) == ["apical", "basal", "mid"]
    # an explicit extent, also with the axis running the other way (apex at lower mm)
    assert aha.slice_levels([5, 29, 31, 59, 61, 89, 95], base_mm=0, apex_mm=90) == \
        ["basal", "basal", "mid", "mid", "apical", "apical", "apex"]
    assert aha.slice_levels([85, 61, 59, 31, 29, 1], base_mm=90, apex_mm=0) == \
        ["basal", "basal", "mid", "mid", "apical", "apical"]
    assert aha.slice_levels([-3.0], base_mm=0, apex_mm=90) == ["basal"]
    # the apical cap (myocardium, no cavity) is segment 17 and leaves the thirds to the cavity's slices
    assert aha.slice_levels([10.0 * k for k in range(10)], cap=[False] * 9 + [True]) == \
        ["basal"] * 3 + ["mid"] * 3 + ["apical"] * 3 + ["apex"]
    assert aha.slice_levels([0.0, 8.0], cap=[True, True]) == ["apex", "apex"]
    with pytest.raises(InputError, match="cap has 1 entries"):
        aha.slice_levels([0.0, 8.0], cap=[True])
    with pytest.raises(InputError, match="LV extent is empty"):
        aha.slice_levels([12.0])
    with pytest.raises(InputError, match="at least one"):
        aha.slice_levels([])


# ---- statistics --------------------------------------------------------------------------------
def test_segment_stats_against_numpy():
    rng = np.random.default_rng(3)
    m = ring()
    seg = aha.aha_segments(m, [C, C], point_at(120), "mid")
    values = rng.normal(1000.0, 50.0, m.shape)
    values[5, 5] = np.nan  # outside the myocardium anyway
    nan_px = np.argwhere(seg == 9)[0]
    values[tuple(nan_px)] = np.nan
    valid = np.ones(m.shape, bool)
    drop = np.argwhere(seg == 10)[:7]
    valid[drop[:, 0], drop[:, 1]] = False
    rows = aha.segment_stats(values, seg, valid)
    assert [r["segment"] for r in rows] == list(range(7, 13))
    for r in rows:
        sel = (seg == r["segment"]) & valid & np.isfinite(values)
        x = values[sel]
        assert r["name"] == aha.SEGMENT_NAMES[r["segment"]]
        assert r["n_pixels"] == x.size
        assert r["mean"] == pytest.approx(np.mean(x), rel=1e-12)
        assert r["sd"] == pytest.approx(np.std(x, ddof=1), rel=1e-12)
        assert r["median"] == pytest.approx(np.median(x), rel=1e-12)
    by = {r["segment"]: r for r in rows}
    assert by[9]["n_pixels"] == (seg == 9).sum() - 1 and by[10]["n_pixels"] == (seg == 10).sum() - 7
    # a segment whose pixels are all invalid keeps its row, without numbers
    none = aha.segment_stats(values, seg, seg != 7)
    assert none[0] == {"segment": 7, "name": "mid anterior", "mean": None, "sd": None, "median": None, "n_pixels": 0}
    with pytest.raises(InputError, match="same shape"):
        aha.segment_stats(values[:10], seg)
    with pytest.raises(InputError, match="not an AHA segment"):
        aha.segment_stats(values, np.where(seg > 0, 20, 0))


# ---- bull's-eye --------------------------------------------------------------------------------
def test_bullseye_png(tmp_path):
    from PIL import Image as PILImage
    vals = {k: 950.0 + 5 * k for k in range(1, 17)}
    vals[17] = 1000.0
    del vals[5]  # drawn grey
    out = aha.bullseye(vals, tmp_path / "sub" / "t1.png", title="native T1", unit="ms", vmin=900, vmax=1100)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with PILImage.open(out) as im:
        assert im.size == aha.BULLSEYE_SIZE_PX
        rgb = np.asarray(im.convert("RGB"))
    # grey appears (the missing segment 5) and the plot is not blank
    assert np.any(np.all(rgb == (199, 199, 199), axis=-1)) and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50
    out16 = aha.bullseye({k: float(k) for k in range(1, 17)}, tmp_path / "b16.png", label_fmt=".1f")
    assert out16.is_file()
    with pytest.raises(InputError, match="1..17"):
        aha.bullseye({18: 1.0}, tmp_path / "bad.png")


def test_bullseye_layout_anterior_top_septum_left():
    """The polar map's angles: 1 / 7 / 13 at the top, 2-3 / 8-9 / 14 on the left (septum),
    4 / 10 / 15 at the bottom, 5-6 / 11-12 / 16 on the right."""
    c = aha.BULLSEYE_CENTRE_DEG
    assert c[1] == c[7] == c[13] == 90.0
    assert c[2] == 150.0 and c[3] == 210.0 and c[14] == 180.0
    assert c[4] == c[10] == c[15] == 270.0
    assert c[5] == 330.0 and c[6] == 30.0 and c[16] == 0.0


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"myocardium": np.zeros((N, N), bool)}, "no myocardium"),
    ({"lv_centre_px": [C, N + 5.0]}, "outside the image"),
    ({"rv_insertion_px": [-3.0, C]}, "outside the image"),
    ({"level": "middle"}, "unknown AHA level"),
    ({"rv_insertion_px": [C, C]}, "coincides with the LV centre"),
    ({"rv_insertion_px": None}, "rv_insertion_px is missing"),
    ({"lv_centre_px": [C]}, r"\[column, row\]"),
    ({"myocardium": np.where(ring(), 1, 2)}, "must be boolean"),
    ({"myocardium": np.ones((2, N, N), bool)}, "must be 2-D"),
])
def test_bad_input_is_an_input_error_with_one_line(kwargs, message):
    args = {"myocardium": ring(), "lv_centre_px": [C, C], "rv_insertion_px": point_at(120), "level": "mid", **kwargs}
    with pytest.raises(InputError, match=message) as err:
        aha.aha_segments(**args)
    assert "\n" not in str(err.value)


def test_segment_names_and_levels():
    assert len(aha.SEGMENT_NAMES) == 17 and aha.SEGMENT_NAMES[1] == "basal anterior"
    assert aha.SEGMENT_NAMES[16] == "apical lateral" and aha.SEGMENT_NAMES[17] == "apex"
    assert sorted(s for v in aha.LEVEL_SEGMENTS.values() for s in v) == list(range(1, 18))


# ---- phantom cross-check ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 3])
def test_reproduces_the_phantom_aha_map(seed):
    """From the phantom's true myocardium and landmarks, the segments match the phantom's own
    AHA map (computed from its analytic anatomy) — and still do on the mirrored acquisition."""
    from cmrlib.phantom import random_irw
    for position in ("basal", "mid", "apical"):
        s = random_irw(seed, position=position)
        sl = s.truth["slice"]
        lab = s.labels.array[0]
        truth = s.aha.array[0].astype(int)
        myo = (lab == 1) | (lab == 3)
        assert sl["aha_level"] == position
        seg = aha.aha_segments(myo, sl["lv_centre"]["pixel_col_row"], sl["rv_insertion_anterior"]["pixel_col_row"],
                               sl["aha_level"], direction=s.image.direction, spacing=s.image.spacing[:2])
        both = myo & (truth > 0)
        assert both.sum() > 100 and np.mean(seg[both] == truth[both]) >= 0.95
        d = s.image.direction.copy()
        d[:, 0] *= -1
        cols = myo.shape[1]
        c, i = sl["lv_centre"]["pixel_col_row"], sl["rv_insertion_anterior"]["pixel_col_row"]
        seg_m = aha.aha_segments(myo[:, ::-1], [cols - 1 - c[0], c[1]], [cols - 1 - i[0], i[1]], sl["aha_level"],
                                 direction=d, spacing=s.image.spacing[:2])
        assert np.mean(seg_m[:, ::-1][both] == truth[both]) >= 0.95


def test_long_axis_positions_and_levels_of_a_phantom_stack():
    """Positions increase from base to apex whichever way the slice axis runs; with the
    phantom's mitral plane and cavity end as the extent the levels are the phantom's, and the
    default (thirds of the slices that hold LV myocardium) agrees on this stack."""
    from cmrlib.image import Image
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    ph = Phantom(sample_subject(4, PhantomOptions(matrix=128, la=False)))
    slices = [ph.lge_slice(k) for k in range(ph.s.n_slices)]
    truth = [s.truth["slices"][0] for s in slices]
    pos = [aha.long_axis_positions(s.image)[0] for s in slices]
    z = [t["z_from_mitral_plane_mm"] for t in truth]
    assert np.allclose(np.diff(pos), np.diff(z), atol=1e-3) and np.all(np.diff(pos) > 0)
    # the same stack with its slice axis reversed (apex -> base): same positions per slice
    img = slices[0].image
    flipped = Image(img.array, img.spacing, img.origin, img.direction * [1, 1, -1])
    assert aha.long_axis_positions(flipped) == pytest.approx(aha.long_axis_positions(img))
    lv = [k for k, t in enumerate(truth) if t["aha_segments_present"]]
    za = np.array([t["material_z_mm"] for t in truth])
    assert aha.slice_levels(za[lv], base_mm=0.0, apex_mm=ph.anat.l_endo) == [truth[k]["aha_level"] for k in lv]
    cap = [not (slices[k].labels.array == 2).any() for k in lv]
    assert aha.slice_levels([pos[k] for k in lv], cap=cap) == [truth[k]["aha_level"] for k in lv]


def test_the_test_frame_is_anatomical():
    """The frame the orientation tests build from is the patient's: lateral towards the
    patient's left (+x LPS), anterior towards -y, the apex left-anterior-inferior."""
    e_u, e_v, n = heart_frame()
    assert e_u[0] > 0.5 and e_v[1] < -0.5 and n @ aha.APEX_PRIOR_LPS > 0.9
    assert np.allclose(np.cross(e_u, e_v), n)


def test_aha_volume_on_a_phantom_stack():
    """A whole phantom LGE stack: levels from the geometry, segments per slice; slices without
    an RV insertion point (beyond the RV) are reported and left 0; the rest match the phantom."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    ph = Phantom(sample_subject(4, PhantomOptions(matrix=128, la=False)))
    slices = [ph.lge_slice(k) for k in range(ph.s.n_slices)]
    truth = [s.truth["slices"][0] for s in slices]
    labels = np.stack([s.labels.array[0] for s in slices])
    myo = (labels == 1) | (labels == 3)
    lv = [k for k in range(len(slices)) if myo[k].any()]
    lv_levels = aha.slice_levels([aha.long_axis_positions(slices[k].image)[0] for k in lv],
                                 cap=[not (labels[k] == 2).any() for k in lv])
    levels = [lv_levels[lv.index(k)] if k in lv else None for k in range(len(slices))]

    def px(t, name):
        return t[name]["pixel_col_row"] if t[name] is not None else None
    skipped: list[dict] = []
    vol = aha.aha_volume(myo, [px(t, "lv_centre") for t in truth], [px(t, "rv_insertion_anterior") for t in truth],
                         levels, direction=slices[0].image.direction, spacing=slices[0].image.spacing[:2],
                         skipped=skipped)
    done = [k for k in range(len(slices)) if vol[k].any()]
    assert {s["index"] for s in skipped} | set(done) == set(range(len(slices)))
    assert len(done) >= 6
    want = np.stack([s.aha.array[0] for s in slices]).astype(int)
    same_level = [k for k in done if levels[k] == truth[k]["aha_level"]]
    sel = myo[same_level] & (want[same_level] > 0)
    assert np.mean(vol[same_level][sel] == want[same_level][sel]) >= 0.95


def test_bullseye_in_bands(tmp_path):
    """dT1's banded bull's-eye: discrete colours at the given bounds; a value in one band gets
    one colour whatever its place in it; bounds must ascend."""
    from PIL import Image as PILImage
    vals = {k: (1.0 if k <= 6 else 2.5 if k <= 12 else 7.0) for k in range(1, 17)}
    path = aha.bullseye(vals, tmp_path / "bands.png", unit="dT1 (%)", cmap="RdYlBu", bounds=(0, 3, 6, 9))
    img = np.asarray(PILImage.open(path).convert("RGB")).astype(int)
    w, h = aha.BULLSEYE_SIZE_PX
    # the polar axes (bullseye's layout): box (0.02, 0.04, 0.74, 0.86) of the figure, ±1.05 units, equal aspect
    scale = min(0.74 * w, 0.86 * h) / 2.1
    cx, cy = 0.02 * w + 0.74 * w / 2, h - (0.04 * h + 0.86 * h / 2)

    def colour(radius: float, angle_deg: float) -> np.ndarray:  # off the segment's label
        a = math.radians(angle_deg)
        return img[int(round(cy - radius * scale * math.sin(a))), int(round(cx + radius * scale * math.cos(a)))]
    basal, mid, apical = colour(0.8, 110), colour(0.55, 110), colour(0.3, 110)  # segments 1, 7, 13
    assert np.abs(basal - mid).max() <= 3 and np.abs(basal - apical).max() > 40
    with pytest.raises(InputError, match="ascending"):
        aha.bullseye(vals, tmp_path / "bad.png", bounds=(3, 0))

"""The offline decoder comparison: flags and identification from hand-made per-step answers."""

from app.bench.reconcile_decode import identification, score


def _answer(put: list[float], n: int = 12) -> dict:
    series = put + [0.0] * (n - len(put))
    zeros = [0.0] * n
    return {
        "fps": 1.0,
        "take_from_shelf": zeros,
        "put_in_cart": series,
        "inspect": zeros,
        "return_to_shelf": zeros,
        "take_out_of_cart": zeros,
    }


def _session() -> dict:
    # A is put in at 2-3 s and is the planted (unscanned) item; B was never handled, but its
    # answer echoes A's put, weaker; C's answer stays quiet
    return {
        "video_id": "v",
        "basket": {"A": 1},
        "spans": [("put_in_cart", "A", 2.0, 4.0)],
        "steps": {
            "A": _answer([0, 0, 0.9, 0.8]),
            "B": _answer([0, 0, 0.6, 0.3]),
            "C": _answer([0, 0, 0.2]),
        },
    }


def test_independent_decoding_flags_the_echo_and_one_product_explains_it_away() -> None:
    independent = score([_session()], "independent")
    assert independent["recall"] == 1.0 and independent["precision"] == 0.5
    assert independent["false_flags_by_kind"] == {"not_scanned": 1}  # B, never taken
    one = score([_session()], "one-product")
    assert one["recall"] == 1.0 and one["precision"] == 1.0
    assert one["false_flags_per_session"] == 0.0


def test_identification_ranks_each_products_own_answer_at_its_moment() -> None:
    found = identification([_session()])["put_in_cart"]
    assert found["moments"] == 1
    assert found["top1"] == 1.0 and found["top3"] == 1.0  # A peaks above B and C at 2-4 s
    assert found["reaches_threshold"] == 1.0
    session = _session()
    session["steps"]["A"] = _answer([0, 0, 0.5])  # now B's echo is the stronger one
    found = identification([session])["put_in_cart"]
    assert found["top1"] == 0.0 and found["top3"] == 1.0

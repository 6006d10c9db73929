from pathlib import Path

import pytest

from app.errors import SettingsError
from app.settings import Settings


def test_defaults_use_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"CARTMEM_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'cartmem.db'}"
    assert settings.database_backend == "sqlite"
    assert not settings.uses_kafka
    assert settings.topic == "cartmem.video"


def test_every_field_is_read_from_its_variable(tmp_path: Path) -> None:
    env = {
        "CARTMEM_DATA_DIR": str(tmp_path),
        "CARTMEM_DATABASE_URL": "postgresql://u:p@db:5432/cartmem",
        "CARTMEM_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CARTMEM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CARTMEM_KAFKA_SASL_USERNAME": "cartmem",
        "CARTMEM_KAFKA_SASL_PASSWORD": "s3cret",
        "CARTMEM_TOPIC": "store7.video",
        "CARTMEM_GROUP": "store7",
        "CARTMEM_DEVICE": "cuda",
        "CARTMEM_MAX_MESSAGE_BYTES": "2000000",
        "CARTMEM_MAX_CHUNK_SECONDS": "12.5",
        "CARTMEM_RECONCILE_MIN_CONFIDENCE": "0.8",
    }
    s = Settings.from_env(env)
    # a bare postgresql:// URL is bound to psycopg2, the driver cartmem ships with
    assert s.database_url == "postgresql+psycopg2://u:p@db:5432/cartmem"
    assert s.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (s.topic, s.group, s.device) == ("store7.video", "store7", "cuda")
    assert s.max_message_bytes == 2_000_000
    assert s.max_chunk_seconds == 12.5
    assert s.reconcile_min_confidence == 0.8
    assert s.uses_kafka


def test_secrets_never_show(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "CARTMEM_DATA_DIR": str(tmp_path),
            "CARTMEM_DATABASE_URL": "postgresql://u:hunter2@db/cartmem",
            "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "CARTMEM_KAFKA_SASL_MECHANISM": "PLAIN",
            "CARTMEM_KAFKA_SASL_PASSWORD": "s3cret",
            "CARTMEM_WEBHOOK_URL": "https://till.example/cartmem",
            "CARTMEM_WEBHOOK_SECRET": "w3bhook",
        }
    )
    shown = s.redacted()
    assert "s3cret" not in repr(s) and "w3bhook" not in repr(s)
    assert "s3cret" not in str(shown) and "hunter2" not in str(shown)
    assert "w3bhook" not in str(shown)
    assert shown["CARTMEM_KAFKA_SASL_PASSWORD"] == "***"
    assert shown["CARTMEM_WEBHOOK_SECRET"] == "***"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CARTMEM_DATABASE_URL": "not a url"}, "CARTMEM_DATABASE_URL"),
        ({"CARTMEM_DATABASE_URL": "mysql://u@h/db"}, "CARTMEM_DATABASE_URL"),
        ({"CARTMEM_MAX_MESSAGE_BYTES": "lots"}, "CARTMEM_MAX_MESSAGE_BYTES"),
        ({"CARTMEM_MAX_LIVE_SESSIONS": "0"}, "CARTMEM_MAX_LIVE_SESSIONS"),
        ({"CARTMEM_DEVICE": "tpu"}, "CARTMEM_DEVICE"),
        ({"CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "CARTMEM_KAFKA_SASL_MECHANISM"),
        ({"CARTMEM_COMMIT_INTERVAL_S": "-1"}, "CARTMEM_COMMIT_INTERVAL_S"),
        ({"CARTMEM_RECONCILE_MIN_CONFIDENCE": "1.5"}, "CARTMEM_RECONCILE_MIN_CONFIDENCE"),
        ({"CARTMEM_WEBHOOK_URL": "https://till.example/hook"}, "CARTMEM_WEBHOOK_SECRET"),
        (
            {"CARTMEM_WEBHOOK_URL": "till.example", "CARTMEM_WEBHOOK_SECRET": "x"},
            "CARTMEM_WEBHOOK_URL",
        ),
        ({"CARTMEM_WEBHOOK_RETRY_S": "0"}, "CARTMEM_WEBHOOK_RETRY_S"),
        ({"CARTMEM_BACKBONE_BATCH_CLIPS": "-1"}, "CARTMEM_BACKBONE_BATCH_CLIPS"),
        ({"CARTMEM_BACKBONE_AUTOCAST": "int8"}, "CARTMEM_BACKBONE_AUTOCAST"),
        ({"CARTMEM_CART_BAND_TOP": "0"}, "CARTMEM_CART_BAND_TOP"),
        ({"CARTMEM_CART_BAND_TOP": "1.2"}, "CARTMEM_CART_BAND_TOP"),
        (
            {
                "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CARTMEM_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            },
            "CARTMEM_KAFKA_SASL_MECHANISM",
        ),
    ],
)
def test_bad_values_name_the_variable_in_one_sentence(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert names in message
    assert message.endswith(".") and "\n" not in message


def test_reading_settings_connects_to_nothing() -> None:
    # an address where nothing listens: parsing must not try it
    s = Settings.from_env(
        {
            "CARTMEM_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "CARTMEM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
    )
    assert s.database_backend == "postgresql"


def test_the_old_commit_interval_name_still_works_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="CARTMEM_COMMIT_INTERVAL_S"):
        settings = Settings.from_env({"CARTMEM_CHECKPOINT_INTERVAL_S": "3"})
    assert settings.commit_interval_s == 3.0
    new_wins = {"CARTMEM_CHECKPOINT_INTERVAL_S": "3", "CARTMEM_COMMIT_INTERVAL_S": "4"}
    assert Settings.from_env(new_wins).commit_interval_s == 4.0


@pytest.mark.parametrize(
    ("env", "device", "expected"),
    [
        ({}, "cpu", (16, "off")),  # tiny: 16-frame clips, one per call in float32 on CPU
        ({}, "cuda", (128, "bf16")),  # eight clips per call in bf16 on CUDA
        ({"CARTMEM_BACKBONE_BATCH_CLIPS": "3"}, "cuda", (48, "bf16")),
        ({"CARTMEM_BACKBONE_AUTOCAST": "fp16"}, "cpu", (16, "fp16")),
        ({"CARTMEM_BACKBONE_AUTOCAST": "off"}, "cuda:1", (128, "off")),
    ],
)
def test_the_backbone_run_follows_the_device_unless_set(
    env: dict[str, str], device: str, expected: tuple[int, str], tiny_checkpoint: Path
) -> None:
    from app.model_runtime import LoadedModel, backbone_run
    from model import LongVMNet

    net = LongVMNet.load(tiny_checkpoint)
    run = backbone_run(Settings.from_env(env), LoadedModel(net, "v", device, tiny_checkpoint))
    assert (run.batch_frames, run.autocast) == expected


def test_a_flag_calibration_is_two_numbers_with_a_slope_of_zero_or_more(tmp_path: Path) -> None:
    base = {"CARTMEM_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).flag_calibration is None
    given = {**base, "CARTMEM_RECONCILE_FLAG_CALIBRATION": " -2.5, 1.25 "}
    assert Settings.from_env(given).flag_calibration == (-2.5, 1.25)
    for bad, message in (
        ("-2.5", "two numbers"),
        ("1,2,3", "two numbers"),
        ("a,b", "two numbers"),
        ("nan,1", "two numbers"),
        ("1,inf", "two numbers"),
        ("-1,-0.5", "slope must be 0 or more"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({**base, "CARTMEM_RECONCILE_FLAG_CALIBRATION": bad})

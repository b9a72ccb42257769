"""TargetTableConfig validation: UnnestSpec, PartitionSpec, TargetTableName, with member paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetl_nb.core.errors import AwsError
from zetl_nb.transform.specs import (
    CONVERSIONS,
    FUNCTIONS,
    MAX_PARTITION_FIELDS,
    TIME_FUNCTIONS,
    UNNEST_SPECS,
    validate_partition_spec,
    validate_table_name,
    validate_target_table_config,
)


def rejected(config: dict[str, Any]) -> str:
    """The message of the ValidationException ``config`` raises."""
    with pytest.raises(AwsError) as info:
        validate_target_table_config(config)
    assert info.value.code == "ValidationException"
    assert info.value.status == 400
    return info.value.message


def test_the_guide_lists_the_values() -> None:
    assert UNNEST_SPECS == ("TOPLEVEL", "FULL", "NOUNNEST")
    assert FUNCTIONS == ("identity", "year", "month", "day", "hour")
    assert frozenset({"year", "month", "day", "hour"}) == TIME_FUNCTIONS
    assert CONVERSIONS == ("epoch_sec", "epoch_milli", "iso")
    assert MAX_PARTITION_FIELDS == 10


def test_empty_config_is_valid() -> None:
    assert validate_target_table_config({}) is None


# -- UnnestSpec -----------------------------------------------------------------------------------


@pytest.mark.parametrize("unnest", UNNEST_SPECS)
def test_unnest_spec_values(unnest: str) -> None:
    validate_target_table_config({"UnnestSpec": unnest})


@pytest.mark.parametrize("unnest", ["full", "TopLevel", "NONE", "", "UNNEST"])
def test_invalid_unnest_spec(unnest: str) -> None:
    message = rejected({"UnnestSpec": unnest})
    assert message.startswith(f"TargetTableConfig.UnnestSpec '{unnest}' is not valid")
    assert "TOPLEVEL, FULL, NOUNNEST" in message


# -- TargetTableName ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders", "orders_2024", "_t", "0", "a" * 128])
def test_valid_table_names(name: str) -> None:
    validate_target_table_config({"TargetTableName": name})


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("Orders", "orders"),
        ("order-items", "order_items"),
        ("order items", "order_items"),
        ("shop.orders", "shop_orders"),
        ("", "my_table"),
    ],
)
def test_invalid_table_names_suggest_a_fix(name: str, suggestion: str) -> None:
    message = rejected({"TargetTableName": name})
    assert message.startswith(f"TargetTableConfig.TargetTableName '{name}' is invalid")
    assert f"(e.g. '{suggestion}')" in message


def test_validate_table_name_names_the_field() -> None:
    with pytest.raises(AwsError) as info:
        validate_table_name("Bad", "TableName")
    assert info.value.message.startswith("TableName 'Bad'")


# -- PartitionSpec --------------------------------------------------------------------------------


def field(name: str, function: str | None = None, conversion: str | None = None) -> dict[str, str]:
    spec = {"FieldName": name}
    if function is not None:
        spec["FunctionSpec"] = function
    if conversion is not None:
        spec["ConversionSpec"] = conversion
    return spec


def test_empty_partition_spec_is_valid() -> None:
    validate_target_table_config({"PartitionSpec": []})


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("conversion", CONVERSIONS)
def test_every_function_with_every_conversion(function: str, conversion: str) -> None:
    validate_target_table_config({"PartitionSpec": [field("ts", function, conversion)]})


def test_function_spec_defaults_to_identity() -> None:
    validate_target_table_config({"PartitionSpec": [field("region")]})
    message = rejected({"PartitionSpec": [field("region"), field("region", "identity")]})
    assert "repeats FieldName 'region' with FunctionSpec 'identity'" in message


def test_identity_needs_no_conversion() -> None:
    validate_target_table_config({"PartitionSpec": [field("region", "identity")]})


@pytest.mark.parametrize("function", sorted(TIME_FUNCTIONS))
def test_time_functions_need_a_conversion_spec(function: str) -> None:
    message = rejected({"PartitionSpec": [field("id"), field("created", function)]})
    assert message.startswith("TargetTableConfig.PartitionSpec[1].ConversionSpec is required")
    assert f"FunctionSpec '{function}'" in message
    assert "'created'" in message
    assert "epoch_sec, epoch_milli, iso" in message


@pytest.mark.parametrize("function", ["Identity", "YEAR", "week", "bucket[16]", "truncate"])
def test_invalid_function_spec(function: str) -> None:
    message = rejected({"PartitionSpec": [field("ts", function, "iso")]})
    assert message.startswith(f"TargetTableConfig.PartitionSpec[0].FunctionSpec '{function}'")
    assert "identity, year, month, day, hour" in message


@pytest.mark.parametrize("conversion", ["epoch_ms", "ISO", "epoch", "", "iso8601"])
@pytest.mark.parametrize("function", ["identity", "day"])
def test_invalid_conversion_spec(function: str, conversion: str) -> None:
    message = rejected({"PartitionSpec": [field("ts", function, conversion)]})
    assert message.startswith(f"TargetTableConfig.PartitionSpec[0].ConversionSpec '{conversion}'")
    assert "epoch_sec, epoch_milli, iso" in message


@pytest.mark.parametrize("spec", [{}, {"FieldName": ""}, {"FunctionSpec": "identity"}])
def test_field_name_is_required(spec: dict[str, str]) -> None:
    message = rejected({"PartitionSpec": [field("a"), spec]})
    assert message.startswith("TargetTableConfig.PartitionSpec[1].FieldName is required")


def test_ten_partition_fields_are_allowed() -> None:
    specs = [field(f"c{i}") for i in range(MAX_PARTITION_FIELDS)]
    validate_target_table_config({"PartitionSpec": specs})


def test_eleven_partition_fields_are_rejected() -> None:
    specs = [field(f"c{i}") for i in range(MAX_PARTITION_FIELDS + 1)]
    message = rejected({"PartitionSpec": specs})
    assert message == ("TargetTableConfig.PartitionSpec has 11 fields; at most 10 are allowed.")


def test_same_field_with_different_functions_is_allowed() -> None:
    specs = [field("ts", "year", "iso"), field("ts", "month", "iso"), field("ts", "day", "iso")]
    validate_target_table_config({"PartitionSpec": specs})


def test_duplicate_field_and_function_is_rejected() -> None:
    specs = [field("ts", "day", "iso"), field("id"), field("ts", "day", "epoch_sec")]
    message = rejected({"PartitionSpec": specs})
    assert message == (
        "TargetTableConfig.PartitionSpec[2] repeats FieldName 'ts' with FunctionSpec 'day'."
    )


def test_first_invalid_member_is_reported() -> None:
    config = {
        "UnnestSpec": "bad",
        "TargetTableName": "Bad",
        "PartitionSpec": [field("ts", "week")],
    }
    assert rejected(config).startswith("TargetTableConfig.UnnestSpec")
    del config["UnnestSpec"]
    assert rejected(config).startswith("TargetTableConfig.TargetTableName")
    del config["TargetTableName"]
    assert rejected(config).startswith("TargetTableConfig.PartitionSpec[0].FunctionSpec")


def test_validate_partition_spec_directly() -> None:
    validate_partition_spec([field("ts", "hour", "epoch_milli")])
    with pytest.raises(AwsError):
        validate_partition_spec([field("ts", "hour")])


# -- properties -----------------------------------------------------------------------------------

field_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)


@st.composite
def partition_fields(draw: st.DrawFn) -> dict[str, str]:
    function = draw(st.sampled_from(FUNCTIONS) | st.none())
    needs = function in TIME_FUNCTIONS
    conversion = draw(
        st.sampled_from(CONVERSIONS) if needs else st.sampled_from(CONVERSIONS) | st.none()
    )
    spec = {"FieldName": draw(field_names)}
    if function is not None:
        spec["FunctionSpec"] = function
    if conversion is not None:
        spec["ConversionSpec"] = conversion
    return spec


def _key(spec: dict[str, str]) -> tuple[str, str]:
    return spec["FieldName"], spec.get("FunctionSpec") or "identity"


partition_specs = st.lists(partition_fields(), max_size=MAX_PARTITION_FIELDS, unique_by=_key)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if draw(st.booleans()):
        config["UnnestSpec"] = draw(st.sampled_from(UNNEST_SPECS))
    if draw(st.booleans()):
        config["TargetTableName"] = draw(field_names)
    if draw(st.booleans()):
        config["PartitionSpec"] = draw(partition_specs)
    return config


@given(valid_configs())
def test_valid_configs_pass(config: dict[str, Any]) -> None:
    assert validate_target_table_config(config) is None


bad_functions = st.text(min_size=1, max_size=12).filter(lambda s: s not in FUNCTIONS)
bad_conversions = st.text(max_size=12).filter(lambda s: s not in CONVERSIONS)


@given(valid_configs(), st.data())
def test_an_invalid_function_spec_is_named_by_its_path(
    config: dict[str, Any], data: st.DataObject
) -> None:
    specs = config.setdefault("PartitionSpec", [])
    if not specs:
        specs.append({"FieldName": "ts"})
    i = data.draw(st.integers(min_value=0, max_value=len(specs) - 1), label="index")
    bad = data.draw(bad_functions, label="FunctionSpec")
    specs[i] = {**specs[i], "FunctionSpec": bad}
    message = rejected(config)
    assert message.startswith(f"TargetTableConfig.PartitionSpec[{i}].FunctionSpec '{bad}'")


@given(valid_configs(), st.data())
def test_an_invalid_conversion_spec_is_named_by_its_path(
    config: dict[str, Any], data: st.DataObject
) -> None:
    specs = config.setdefault("PartitionSpec", [])
    if not specs:
        specs.append({"FieldName": "ts", "FunctionSpec": "day", "ConversionSpec": "iso"})
    i = data.draw(st.integers(min_value=0, max_value=len(specs) - 1), label="index")
    bad = data.draw(bad_conversions, label="ConversionSpec")
    specs[i] = {**specs[i], "ConversionSpec": bad}
    message = rejected(config)
    assert message.startswith(f"TargetTableConfig.PartitionSpec[{i}].ConversionSpec '{bad}'")


@given(valid_configs(), st.integers(min_value=1, max_value=5))
def test_too_many_fields_are_named_by_their_path(config: dict[str, Any], extra: int) -> None:
    specs = config.setdefault("PartitionSpec", [])
    specs.extend({"FieldName": f"extra{j}"} for j in range(MAX_PARTITION_FIELDS + extra))
    message = rejected(config)
    assert message.startswith(f"TargetTableConfig.PartitionSpec has {len(specs)} fields")

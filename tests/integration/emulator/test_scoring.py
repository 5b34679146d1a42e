"""Real scoring on Azurite: output content, input forms, the nested-folder rule, job failures."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from aml_emulator import predict_row
from aml_emulator._sample import generate_sample_files
from tests.integration.emulator.helpers import (
    HEADER,
    ROW,
    EmulatorApi,
    body,
    csv_text,
    ds,
    put_blobs,
    read_lines,
    uid,
)
from tests.support import DEV_ACCOUNT, Azurite

pytestmark = pytest.mark.integration

POSITIVE_ROW = "70,1,4,170,300,0,2,100,1,4.0,3,3,reversible"
NEGATIVE_ROW = "35,0,1,110,180,0,0,190,0,0.0,1,0,normal"


def _expected(files: dict[str, bytes]) -> list[str]:
    """The expected prediction lines computed independently of the emulator's worker."""
    lines = []
    for name in sorted(files):
        text = files[name].decode().splitlines()
        header = text[0].split(",")
        for row_number, line in enumerate(text[1:]):
            values = dict(zip(header, line.split(","), strict=True))
            thal = {"normal": 0.0, "fixed": 1.0, "reversible": 2.0}
            features = {k: thal[v] if v in thal else float(v) for k, v in values.items()}
            lines.append(f"{row_number},{predict_row(features)},{name.rsplit('/', 1)[-1]}")
    return lines


def test_sample_data_is_scored_in_name_order_with_one_line_per_row(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix, out = uid("heart"), f"{uid('out')}/predictions.csv"
    files = {f"{prefix}/{f.name}": f.content for f in generate_sample_files()}
    put_blobs(container, files)
    name = api.submit(body(ds(prefix + "/"), ds(out)))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Completed", job["properties"].get("errorMessage")
    assert job["properties"]["properties"] == {"rowsScored": "303", "filesScored": "4"}
    lines = read_lines(container, out)
    assert len(lines) == 303
    assert lines == _expected(files)
    assert [ln.split(",")[2] for ln in lines[-3:]] == ["heart-unlabeled-3.csv"] * 3
    assert [ln.split(",")[0] for ln in lines[-3:]] == ["0", "1", "2"]
    positives = sum(int(ln.split(",")[1]) for ln in lines) / len(lines)
    assert 0.3 <= positives <= 0.6
    assert container.get_blob_client(out).get_blob_properties().metadata["emulatorjob"] == name


def test_model_predicts_both_classes(api: EmulatorApi, container: ContainerClient) -> None:
    prefix, out = uid("mix"), f"{uid('out')}/p.csv"
    data = "\n".join([HEADER, POSITIVE_ROW, NEGATIVE_ROW]) + "\n"
    put_blobs(container, {f"{prefix}/mix.csv": data.encode()})
    name = api.submit(body(ds(prefix), ds(out)))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert read_lines(container, out) == ["0,1,mix.csv", "1,0,mix.csv"]


def test_nested_folders_are_not_explored(api: EmulatorApi, container: ContainerClient) -> None:
    prefix, out = uid("nest"), f"{uid('out')}/p.csv"
    put_blobs(
        container,
        {
            f"{prefix}/b.csv": csv_text(2),
            f"{prefix}/a.csv": csv_text(1),
            f"{prefix}/sub/deep.csv": csv_text(5),
            f"{prefix}/sub/image.avro": b"ignored: nested",
        },
    )
    name = api.submit(body(ds(prefix + "/"), ds(out)))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Completed"
    assert job["properties"]["properties"]["filesScored"] == "2"
    assert read_lines(container, out) == ["0,0,a.csv", "0,0,b.csv", "1,0,b.csv"]


def test_folder_with_only_nested_folders_fails_as_empty(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("onlynested")
    put_blobs(container, {f"{prefix}/sub/deep.csv": csv_text(5)})
    name = api.submit(body(ds(prefix), ds(f"{uid('o')}/p.csv")))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert "Dataset initialization failed" in job["properties"]["errorMessage"]


@pytest.mark.parametrize("pascal", [True, False], ids=["PascalCase", "camelCase"])
def test_uri_file_input(api: EmulatorApi, container: ContainerClient, pascal: bool) -> None:
    blob, out = f"{uid('file')}/one.csv", f"{uid('out')}/p.csv"
    put_blobs(container, {blob: csv_text(4)})
    name = api.submit(body(ds(blob), ds(out), input_type="UriFile", pascal=pascal))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert read_lines(container, out) == [f"{i},0,one.csv" for i in range(4)]


def test_azurite_blob_url_input(
    api: EmulatorApi, container: ContainerClient, azurite: Azurite
) -> None:
    prefix, out = uid("url"), f"{uid('out')}/p.csv"
    put_blobs(container, {f"{prefix}/x.csv": csv_text(2)})
    url = f"http://127.0.0.1:{azurite.port}/{DEV_ACCOUNT}/{container.container_name}/{prefix}"
    name = api.submit(body(url, ds(out)))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert len(read_lines(container, out)) == 2


def test_default_output_path_and_output_file_name(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("def")
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1)})
    job = api.submit(body(ds(prefix)))
    name = job["name"]
    expected = ds(f"azureml/{name}/score/predictions.csv")
    assert job["properties"]["outputData"]["score"]["uri"] == expected
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert read_lines(container, f"azureml/{name}/score/predictions.csv") == ["0,0,x.csv"]
    named = api.submit(body(ds(prefix), OutputFileName="mine.csv"))["name"]
    assert api.wait_status(named)["properties"]["status"] == "Completed"
    assert container.get_blob_client(f"azureml/{named}/score/mine.csv").exists()


def test_folder_output_gets_a_predictions_file(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix, out_dir = uid("fo"), uid("outdir")
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1)})
    payload = body(ds(prefix))
    payload["properties"]["OutputData"] = {
        "score": {"JobOutputType": "UriFolder", "Uri": ds(out_dir + "/")}
    }
    name = api.submit(payload)["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert read_lines(container, f"{out_dir}/predictions.csv") == ["0,0,x.csv"]


def test_existing_output_fails_the_job(api: EmulatorApi, container: ContainerClient) -> None:
    prefix, out = uid("exists"), f"{uid('out')}/p.csv"
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1), out: b"already here\n"})
    response = api.invoke(body(ds(prefix), ds(out)))
    assert response.status_code == 200  # the job fails, not the HTTP call
    job = api.wait_status(response.json()["name"])
    assert job["properties"]["status"] == "Failed"
    assert job["properties"]["provisioningState"] == "Failed"
    assert job["properties"]["errorMessage"] == f"UserError: the path already exists: {ds(out)}"
    assert read_lines(container, out) == ["already here"]  # never overwritten


def test_output_created_while_running_is_caught_at_write_time(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix, out = uid("race"), f"{uid('out')}/p.csv"
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1)})
    api.admin(
        "POST", "faults", {"kind": "job", "count": 1, "script": [["Queued", 0.05], ["Running", 60]]}
    )
    name = api.submit(body(ds(prefix), ds(out)))["name"]
    api.wait_status(name, ("Running",))
    put_blobs(container, {out: b"someone else\n"})  # appears after the submission check
    job = api.job(name)
    assert job["properties"]["status"] == "Running"
    api.admin("POST", f"jobs/{name}/script", {"script": [["Finalizing", 0.05]]})
    done = api.wait_status(name)
    assert done["properties"]["status"] == "Failed"
    assert "the path already exists" in done["properties"]["errorMessage"]
    assert read_lines(container, out) == ["someone else"]


@pytest.mark.parametrize("input_type", ["UriFolder", "UriFile"])
def test_missing_input_fails_the_job(api: EmulatorApi, input_type: str) -> None:
    uri = ds(f"{uid('missing')}/x.csv")
    name = api.submit(body(uri, ds(f"{uid('o')}/p.csv"), input_type=input_type))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    message = job["properties"]["errorMessage"]
    assert message.startswith("Dataset initialization failed")
    assert "Source of the dataset is either not accessible or doesn't contain any data" in message


def test_empty_file_input_fails_the_job(api: EmulatorApi, container: ContainerClient) -> None:
    blob = f"{uid('empty')}/x.csv"
    put_blobs(container, {blob: b""})
    name = api.submit(body(ds(blob), ds(f"{uid('o')}/p.csv"), input_type="UriFile"))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert "doesn't contain any data" in job["properties"]["errorMessage"]


def test_unsupported_file_type_fails_the_job(api: EmulatorApi, container: ContainerClient) -> None:
    prefix = uid("avro")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(1), f"{prefix}/b.avro": b"\x00\x01"})
    name = api.submit(body(ds(prefix), ds(f"{uid('o')}/p.csv")))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert job["properties"]["errorMessage"] == (
        "Error processing input file: 'b.avro'. File type 'avro' is not supported"
    )


def test_missing_column_fails_naming_file_and_column(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("cols")
    bad = HEADER.rsplit(",", 1)[0] + "\n" + ROW.rsplit(",", 1)[0] + "\n"
    put_blobs(container, {f"{prefix}/bad.csv": bad.encode()})
    name = api.submit(body(ds(prefix), ds(f"{uid('o')}/p.csv")))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    message = job["properties"]["errorMessage"]
    assert "'bad.csv'" in message
    assert "'thal'" in message


def test_bad_value_fails_naming_the_column(api: EmulatorApi, container: ContainerClient) -> None:
    prefix = uid("val")
    put_blobs(container, {f"{prefix}/v.csv": csv_text(1, ROW.replace("63", "abc", 1))})
    name = api.submit(body(ds(prefix), ds(f"{uid('o')}/p.csv")))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert "'age'" in job["properties"]["errorMessage"]


def test_unknown_output_datastore_fails_the_job(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("ds")
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1)})
    response = api.invoke(body(ds(prefix), "azureml://datastores/nostore/paths/o/p.csv"))
    assert response.status_code == 200
    job = api.wait_status(response.json()["name"])
    assert job["properties"]["status"] == "Failed"
    assert "nostore" in job["properties"]["errorMessage"]


def test_second_datastore_maps_to_its_container(
    api: EmulatorApi, container: ContainerClient, blob_service: BlobServiceClient
) -> None:
    prefix = uid("ds2")
    put_blobs(container, {f"{prefix}/x.csv": csv_text(1)})
    out = f"azureml://datastores/otherstore/paths/{prefix}/p.csv"
    name = api.submit(body(ds(prefix), out))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    other = blob_service.get_container_client("other-container")  # created on demand
    assert read_lines(other, f"{prefix}/p.csv") == ["0,0,x.csv"]

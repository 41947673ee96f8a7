"""`editanything edit`: bad input and bad outputs stop in one line, before any model loads."""

from conftest import DEMOS, edit_output

from editanything.cli import main

COFFEE = str(DEMOS / "coffee.jpg")


def test_an_unwritable_output_folder_stops_before_any_model(isolated_models, tmp_path, capsys):
    (tmp_path / "out").write_bytes(b"a file, not a folder")
    # sd15-inpainting is missing: a check after the models would name the download instead
    status = main(["edit", COFFEE, "--box", "10,10,100,100", "--prompt", "a cat", "--model", "sd15-inpainting",
                   "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert f"{tmp_path / 'out'}: is a file, not a folder" in err


def test_a_negative_point_reaches_its_check(isolated_models, tmp_path, capsys):
    status = main(["segment", COFFEE, "--point", "-5,-5", "-o", str(tmp_path / "masks")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "(-5, -5) is outside the 600x400 image" in errors[0]
    status = main(["edit", COFFEE, "--point", "-5,-5", "--remove", "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert status == 1 and "(-5, -5) is outside the 600x400 image" in err


def test_a_binary_styles_file_is_one_line(isolated_models, tmp_path, capsys):
    for name, data in [("styles.csv", (DEMOS / "coffee.jpg").read_bytes()), ("nul.csv", b"name,prompt\n\0\0")]:
        (tmp_path / name).write_bytes(data)
        status = main(["edit", COFFEE, "--box", "10,10,100,100", "--prompt", "a cat", "--styles-file",
                       str(tmp_path / name), "--style", "photo", "-o", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1
        assert f"{tmp_path / name}: not a styles file (a binary file" in err


def _edit_on_tiny_models(out, *extra):
    return ["edit", COFFEE, "--select", "cup", "--box-threshold", "0.05", "--text-threshold", "0.05", "--prompt",
            "a mug", "--steps", "2", "--seed", "42", "--resolution", "64", "-o", str(out), *extra]


def test_quiet_means_no_library_warnings_or_progress_bars(deep, tmp_path, capfd):
    import warnings

    def run(*extra):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert main(_edit_on_tiny_models(tmp_path / str(len(extra)), *extra)) == 0
        return [str(w.message) for w in seen], capfd.readouterr().err

    seen, err = run()
    assert seen  # what -q is there to hide: the libraries' warnings (and, on a terminal, the bars)
    # stderr is no terminal here: no library bar (raw carriage returns in a log), one line for the photo
    assert "%|" not in err and "\r" not in err and f"edit 1/1: {COFFEE} done (" in err
    seen, err = run("-q")
    assert seen == [] and "%|" not in err
    # one line: the generator, and why "auto" took it
    assert len(err.splitlines()) == 1 and err.startswith("generator: sd15-inpainting (")
    assert main(["replay", str(edit_output(tmp_path / "1", "coffee")), "-q"]) == 0
    seen_err = capfd.readouterr().err
    assert "%|" not in seen_err and "Warning" not in seen_err

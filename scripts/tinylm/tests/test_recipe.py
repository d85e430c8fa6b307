import json

from scripts.tinylm.recipe import run
from .conftest import ROOT


def test_tiny_recipe_runs_end_to_end_and_skips_finished_stages(tmp_path):
    text = (ROOT / "configs" / "tiny-recipe.toml").read_text().replace('out_dir = "runs/tiny-recipe"', f'out_dir = "{tmp_path}"')
    for key in ("parent_data", "student_data", "tokenizer"):
        text = text.replace(f'{key} = "test/', f'{key} = "{ROOT}/test/')
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text)
    results = run(str(recipe))
    assert results["validation"]["bits_per_byte"] > 0
    assert (tmp_path / "student-init.pt").exists()
    student_log = [json.loads(line) for line in (tmp_path / "student" / "log.jsonl").read_text().splitlines()]
    assert any("sampled_batches" in e for e in student_log)  # the second round happened
    stamp = (tmp_path / "parent" / "final.pt").stat().st_mtime
    assert run(str(recipe)) == results  # everything exists: nothing is redone
    assert (tmp_path / "parent" / "final.pt").stat().st_mtime == stamp

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
python3 -c "import sys; from pathlib import Path; sys.path.insert(0,'tests'); from helpers.model import write_manifest; print(write_manifest(Path('/tmp/d'), n_train=10, n_eval=2, n=128))" || exit
S="--set batch_size=4 --set epochs=3 --set epoch_decay=2 --set num_workers=4 --set log_every=1 --set preview_every=3 --set checkpoint_every=2 --set progress=false"
time timeout 300 python3 -m farside_gan train --manifest /tmp/d/manifest.csv --out-dir /tmp/run $S > $OUT/train.log 2>&1; echo train rc=$?
tail -5 $OUT/train.log; cat /tmp/run/losses.csv | tail -4; cat /tmp/run/validation.csv; ls /tmp/run /tmp/run/previews
time timeout 120 python3 -m farside_gan predict --checkpoint /tmp/run/generator.pt --out-dir /tmp/pred --compile /tmp/d/pairs/stack_01*.fits > $OUT/predict.log 2>&1; echo predict rc=$?; tail -3 $OUT/predict.log

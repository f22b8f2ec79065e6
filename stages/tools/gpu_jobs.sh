# The jobs of the next GPU batch (sourced by gpu_batch.sh, which defines `job JOB NAME EPOCHS RESUME(0/1) ARGS...`
# and `want JOB`; ONLY="a b" runs only those). Each runs in the background until the batch's HARD seconds.
# Build .gpu/ with: stages/tools/gpu_prepare.sh build cards/vae.binarized-mnist cards/pixelcnn.binarized-mnist
#
# Planned after 2026-12-05 (issues 17 and 20; the vae50 job planned on 2026-12-04 ran on CPU instead, as
# stages/vae-iw50.*, and met the VAE's target):
# - pvae128: the PixelVAE at twice the release's decoder width (its default recipe: 25 epochs, dynamic
#   binarization, per-epoch decay 0.9), from scratch. Width was the lever that worked (decoder_hidden 32 -> 64:
#   <= 81.93 -> <= 81.24 at k=100); depth, the latent size and the encoder's width did not (stages/README.md).
# - pcnn128: the h=128 PixelCNN's remaining epochs from its weights; lr 2.3e-4 = 1e-3 * 0.9^14, where the
#   recipe's per-epoch decay stood after the 14 epochs it had.
# - row32: the Row LSTM at hidden 32 / out_features 64 from scratch (valid 84.96 after 3 epochs on 2026-12-04).
#   Since 2026-12-05 h=32 is the release config and its run goes on on CPU (stages/pixelrnn-row-h32.*): a GPU batch
#   continues it from its checkpoint: before the call, `mkdir -p .gpu/ckpt/row32 && cp
#   stages/pixelrnn-row-h32.binarized-mnist/{checkpoint.safetensors,train_log.jsonl} .gpu/ckpt/row32/`.
want pvae128 && job pvae128 pixelvae 25 0 --set model.decoder_hidden=128 --set model.cond_hidden=128 &
want pcnn128 && job pcnn128 pixelcnn 60 0 --set lr=2.3e-4 --init-from local-dir:.gpu/init/pixelcnn.binarized-mnist &
want row32 && job row32 pixelrnn-row 60 1 --set model.hidden=32 --set model.out_features=64 &
#
# The batch of 2026-12-04, as it ran (ckpt/pvae held pixelvae-w64's checkpoint of epoch 4):
#   VAE=(--recipe iwae --set iw_samples=50)
#   PV=(--set model.decoder_hidden=64 --set model.cond_hidden=64 --set dynamic_binarization=true
#       --set lr_schedule=exponential --set lr_gamma=0.9)
#   job vae50 vae 1000 0 "${VAE[@]}" &
#   job vae50b vae 1000 0 "${VAE[@]}" --set batch_size=256 --set lr=2e-3 &
#   job pvae pixelvae 25 1 "${PV[@]}" &
#   job pcnn128 pixelcnn 60 0 --set model.hidden=128 --set model.out_hidden=256 &
#   job row32 pixelrnn-row 60 0 --set model.hidden=32 --set model.out_features=64 &

/**
 * 3D U-Net training step (base 8 channels, 3 levels), medseg vs PyTorch 1.13
 * in the same run (fp32 and bf16; PyTorch also with jemalloc and tcmalloc),
 * plus tfjs' pure-JS CPU backend. Writes
 * bench/results/train-step-3d.json.
 *
 *   npm run bench -- train-step-3d [--no-tfjs] [--rounds 4] [--steps 3] [--threads 2]
 */
import { runTrainStep } from './lib/train-step.ts';

export async function main(args: string[]): Promise<void> {
  await runTrainStep({ name: 'train-step-3d', dims: 3, channels: [8, 16, 32], input: [2, 1, 48, 48, 48] }, args);
}

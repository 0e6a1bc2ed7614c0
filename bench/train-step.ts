/**
 * 2D U-Net training step, medseg vs PyTorch 1.13 (same libtorch) in the same
 * run (fp32 and bf16; PyTorch also with jemalloc and tcmalloc), plus tfjs'
 * pure-JS CPU backend. Writes bench/results/train-step.json.
 *
 *   npm run bench -- train-step [--no-tfjs] [--rounds 4] [--steps 3] [--threads 2]
 */
import { runTrainStep } from './lib/train-step.ts';

export async function main(args: string[]): Promise<void> {
  await runTrainStep({ name: 'train-step', dims: 2, channels: [16, 32, 64, 128], input: [8, 1, 128, 128] }, args);
}

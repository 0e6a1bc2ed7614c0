/**
 * The unlabelled losses of semi-supervised training, on logits / softmax
 * probabilities [N, K, ...spatial] and voxel masks [N, ...spatial]:
 * - predictive entropy of the teacher's mean softmax, -sum_k p log(p + 1e-6)
 *   (the 1e-6 keeps log finite at p = 0, as UA-MT);
 * - masked softmax MSE: sum over masked voxels and classes of
 *   (softmax(student) - teacher)^2, divided by K * (masked voxels) (+1e-16),
 *   i.e. the mean over the classes and the counted voxels (UA-MT's loss for
 *   K = 2); 0 when nothing is counted;
 * - pseudo-label cross-entropy: -log softmax(student) at the teacher's argmax,
 *   averaged over the voxels whose top teacher probability exceeds the
 *   threshold; 0 when none does.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

const { F } = torch;

/** [N, K, ...] probabilities -> [N, ...] entropy in nats. */
export function predictiveEntropy(probs: Tensor): Tensor {
  return torch.tidy(() => probs.mul(probs.add(1e-6).log()).sum(1).neg());
}

/** Mean over classes and masked voxels of (softmax(studentLogits) - teacherProbs)^2; `mask` [N, ...] of 0/1 (all voxels when null). */
export function maskedSoftmaxMse(studentLogits: Tensor, teacherProbs: Tensor, mask: Tensor | null): Tensor {
  return torch.tidy(() => {
    const K = studentLogits.size(1);
    const dist = F.softmax(studentLogits, 1).sub(teacherProbs).square();
    if (!mask) return dist.mean();
    const m = mask.to('float32').unsqueeze(1);
    return dist.mul(m).sum().div(m.sum().mul(K).add(1e-16));
  });
}

/** The teacher's confident voxels: argmax labels [N, ...] (int64) and a 0/1 mask [N, ...] where max prob > threshold. */
export function pseudoLabels(teacherProbs: Tensor, threshold: number): { labels: Tensor; mask: Tensor } {
  return torch.tidy(() => {
    const [values, indices] = teacherProbs.maxWithIndices(1);
    return { labels: indices, mask: values.gt(threshold).to('float32') };
  });
}

/** Cross-entropy of the student against pseudo labels, averaged over the masked voxels (0 if none). */
export function maskedCrossEntropy(studentLogits: Tensor, labels: Tensor, mask: Tensor): Tensor {
  return torch.tidy(() => {
    const nll = F.logSoftmax(studentLogits, 1).gather(1, labels.unsqueeze(1)).squeeze(1).neg();
    return nll.mul(mask).sum().div(mask.sum().clamp(1, null));
  });
}

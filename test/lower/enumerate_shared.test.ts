/**
 * Enumeration with learned entries shared by the model and the address guide (`stack(mem, dummies)`,
 * as in the Omniglot models): the guide-training term sum_i stop(post_i) log q(a = i | x) must move
 * the guide only, so the learned entries follow the exact gradient of the bound. With no continuous
 * latent the enumerated bound is log p(x) itself, whose gradient is computed here directly.
 */
import { describeBackends } from '../estimators/backends.ts';
import { sharedEntriesCheck } from './suites/exact_gradients.ts';

// The check itself is shared with test/runtime/generic_path.test.ts.
describeBackends('enumerate with entries shared by model and guide', () => {
  sharedEntriesCheck();
});

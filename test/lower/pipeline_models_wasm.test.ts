/**
 * Every model in models/ trains two steps with every estimator that applies, on wasm
 * (test/lower/suites/every_model.ts; the other backend in pipeline_models_cpu.test.ts, a file each so
 * that the two run at once).
 */
import { describeBackends } from '../estimators/backends.ts';
import { everyModelTrains } from './suites/every_model.ts';

describeBackends('every model compiles and trains', everyModelTrains, ['wasm']);

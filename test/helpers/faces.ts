// Whole-photo tests need the optional face finder (dlib's module): without it they skip and
// say why.
import { faceFindingAvailable } from 'difface';

export function skipWithoutFaceFinding(context: Mocha.Context): void {
  const finding = faceFindingAvailable();
  if (!finding.available) {
    // eslint-disable-next-line no-console
    console.log(`      skipped: ${finding.reason}`);
    context.skip();
  }
}

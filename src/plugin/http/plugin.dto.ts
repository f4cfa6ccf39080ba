/** Request bodies of the plugin's local API (checked by src/device/device-validation.ts). */
import { IsString } from 'class-validator';

/** POST /api/manifest: which manifest to switch to. */
export class SwitchManifestDto {
  @IsString({
    message: 'send {"path": "<id>.yaml"}: a manifest in the folder of the plugin --manifest file',
    context: { code: 'path_required' },
  })
  path!: string;
}
